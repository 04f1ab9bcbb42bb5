#!/usr/bin/env python3
"""Generate examples/simulate/seed-day.csv: the built-in `kedge simulate` scenario's arrivals.

A day of payment traffic for the seed's consumers, per second (`t_s,messages`):
- a daily cycle: ~15 msg/s at night, a morning ramp, a midday peak (~180 msg/s), an
  evening shoulder;
- flash crowds: +400 msg/s for 3 minutes at 09:30, +600 msg/s for 2 minutes at 13:15,
  +300 msg/s for 5 minutes at 20:00;
- a batch dump of 30,000 messages within 10 seconds at 02:00 (a nightly export);
- Poisson noise on every second.
Deterministic (seed 20261203): rerunning writes the same file.
"""
import math
import random
import sys

rng = random.Random(20261203)


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


def rate(t):
    r = 15.0
    r += bump(t, 9.5, 1.2, 90)    # morning
    r += bump(t, 13.0, 1.5, 165)  # midday peak
    r += bump(t, 19.5, 1.3, 110)  # evening
    h = t / 3600.0
    if 9.5 <= h < 9.5 + 3 / 60:
        r += 400
    if 13.25 <= h < 13.25 + 2 / 60:
        r += 600
    if 20.0 <= h < 20.0 + 5 / 60:
        r += 300
    return r


out = sys.stdout if len(sys.argv) < 2 else open(sys.argv[1], "w")
out.write("t_s,messages\n")
dump_at = 2 * 3600
for t in range(86400):
    n = poisson(rate(t))
    if dump_at <= t < dump_at + 10:
        n += 3000
    out.write(f"{t},{n}\n")
