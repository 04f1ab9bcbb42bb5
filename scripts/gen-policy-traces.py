#!/usr/bin/env python3
"""Generate the traces of examples/simulate/policy/: scenarios that the `kedge` policy is
measured on next to the built-in one (docs/benchmarks.md, "Scaling decisions").

- flash.csv: 24 h, a daily cycle (night ~10 msg/s, a broad day ~120 msg/s) with five flash
  crowds of +200..+800 msg/s lasting 1-6 minutes at irregular times.
- dumps.csv: 24 h, a low background (~8 msg/s) and a batch dump every 2 h of 10,000-50,000
  messages within 5-30 s (exports, nightly jobs).
- step.csv: 12 h, three steady producers (3 × 15 msg/s) that become five at 04:00 and seven at
  08:00 (a step in load), then back to three at 10:00.
Poisson noise on every second. Deterministic (seed 20261204): rerunning writes the same files.
"""
import math
import os
import random

rng = random.Random(20261204)


def poisson(lam):
    if lam <= 0:
        return 0
    if lam < 30:
        l, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= l:
                return k
            k += 1
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


def bump(t, center_h, width_h, height):
    x = (t / 3600.0 - center_h) / width_h
    return height * math.exp(-0.5 * x * x)


def flash(t):
    r = 10.0 + bump(t, 11.0, 2.5, 70) + bump(t, 16.0, 2.0, 60)
    h = t / 3600.0
    for start, minutes, extra in [(7.2, 2, 300), (10.6, 6, 200), (12.1, 1, 800),
                                  (15.4, 3, 500), (21.7, 4, 250)]:
        if start <= h < start + minutes / 60:
            r += extra
    return r


DUMPS = [(2 * k * 3600 + 600, rng.randint(10, 50) * 1000, rng.randint(5, 30)) for k in range(12)]


def dumps(t):
    extra = 0.0
    for at, n, secs in DUMPS:
        if at <= t < at + secs:
            extra += n / secs
    return 8.0, extra


def step(t):
    h = t / 3600.0
    producers = 3
    if 4 <= h < 10:
        producers = 5
    if 8 <= h < 10:
        producers = 7
    return producers * 15.0


def write(path, seconds, f):
    with open(path, "w") as out:
        out.write("t_s,messages\n")
        for t in range(seconds):
            r = f(t)
            if isinstance(r, tuple):
                n = poisson(r[0]) + int(round(r[1]))
            else:
                n = poisson(r)
            if n:
                out.write(f"{t},{n}\n")


here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "simulate", "policy")
write(os.path.join(here, "flash.csv"), 86400, flash)
write(os.path.join(here, "dumps.csv"), 86400, dumps)
write(os.path.join(here, "step.csv"), 12 * 3600, step)
