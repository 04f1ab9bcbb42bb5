//! The self-contained HTML report page, shared by every command that writes one (`kedge up`
//! with one run; `kedge simulate` comparing several runs of one scenario under different
//! policies).
//!
//! # The data it takes
//! Plain data, no knowledge of where it came from:
//! - a [`Page`]: a title and a *what ran* block (label → value: scenario, policy, manifests,
//!   timings…), then one or more [`Run`]s;
//! - each [`Run`]: a name (the policy, or the scenario for a single run), the outcome in one
//!   line of words, headline [`Figure`]s (label, value, whether it is bad news), what went wrong
//!   (`problems`, sentences; empty means nothing did) and `notes` (explanations that are not
//!   problems), [`Chart`]s of time series (named [`Series`] of `(t_seconds, value)`; a
//!   non-finite value breaks the line), a decision log ([`Decision`]: `at_ms` since the run's
//!   start, kind, text) and the full key table (`details`, label → value).
//!
//! # The page it renders, top to bottom
//! 1. The headline: what ran; for one run the outcome line, the figures as cards, what went
//!    wrong; for several runs a table with one row per run (the figures as columns, then what
//!    went wrong) and each run's outcome line.
//! 2. The charts: one per chart title; several runs' series of the same chart are overlaid
//!    (colour per run, dash per series), one run's series get a colour each. Long series are
//!    thinned to at most [`MAX_POINTS`] per line, keeping each bucket's minimum and maximum.
//! 3. The decision log: a table searchable by text and filterable by kind and run (a few lines
//!    of plain JavaScript inside the page; `report.html#q=TEXT` opens it filtered).
//! 4. The full key table, one column per run.
//!
//! The page needs nothing from the network: CSS, SVG and script are inline.

use std::collections::BTreeSet;
use std::fmt::Write as _;

/// The whole page.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// `kedge up: demo`, `kedge simulate: seed.yaml`.
    pub title: String,
    /// What ran: scenario, policy, manifests, durations… (label, value), in this order.
    pub what_ran: Vec<(String, String)>,
    pub runs: Vec<Run>,
}

/// One run of the scenario (one policy).
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// The policy's name (`kedge`, `keda-karpenter`, `oracle`) or the scenario's for a single run.
    pub name: String,
    /// The outcome in one line: `2150 sent, 2013 processed, 137 unprocessed, 0 lost, 0 duplicates`.
    pub outcome: String,
    /// The rest of the headline in words (label, sentence): latency, cost, scaling actions.
    pub summary: Vec<(String, String)>,
    /// Headline figures; runs compared side by side share the labels (columns of the table).
    pub figures: Vec<Figure>,
    /// What went wrong, one sentence each. Empty: nothing did.
    pub problems: Vec<String>,
    /// Explanations a reader needs that are not problems (why messages were left in the queue).
    pub notes: Vec<String>,
    pub charts: Vec<Chart>,
    pub decisions: Vec<Decision>,
    /// Every key the run recorded (label, value), shown last.
    pub details: Vec<(String, String)>,
}

/// A headline figure: `cost` `$0.0421`.
#[derive(Debug, Clone, Default)]
pub struct Figure {
    pub label: String,
    pub value: String,
    /// Bad news (shown in red): losses, duplicates, a backlog that never drained.
    pub bad: bool,
}

impl Figure {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Figure {
        Figure {
            label: label.into(),
            value: value.into(),
            bad: false,
        }
    }

    pub fn bad_if(mut self, bad: bool) -> Figure {
        self.bad = bad;
        self
    }
}

/// One chart: series sharing an axis. Runs' charts with the same title are overlaid.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    /// The y axis' unit, shown beside the title (`messages`, `USD/h`, `ms`).
    pub unit: String,
    pub series: Vec<Series>,
}

/// A named line: `(t_seconds, value)` points, in time order; a non-finite value is a gap.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// A CSS colour for this line when the page shows one run (several runs are coloured by
    /// run); `None` takes the next one of the palette.
    pub colour: Option<String>,
}

/// One decision with its reason, `at_ms` after the run's start.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub at_ms: u64,
    pub kind: String,
    pub text: String,
}

/// Points kept per line; longer series are thinned (min and max of each bucket).
pub const MAX_POINTS: usize = 1200;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const DASHES: [&str; 4] = ["", "6 3", "2 3", "8 3 2 3"];

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A round step giving about `n` intervals over `span`.
pub fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// A value for an axis label, with as many decimals as the grid step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// A time axis step: round seconds, minutes or hours, about `n` intervals over `span` seconds.
fn time_step(span: f64, n: f64) -> f64 {
    const STEPS: [f64; 17] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0,
    ];
    let raw = span / n;
    STEPS
        .iter()
        .copied()
        .find(|s| *s >= raw)
        .unwrap_or_else(|| (raw / 86400.0).ceil() * 86400.0)
}

/// `45s`, `4m`, `4m30s`, `2h`, `1h30m`.
pub fn time_label(t: f64) -> String {
    let t = t.round().max(0.0) as u64;
    if t < 120 {
        format!("{t}s")
    } else if t < 7200 {
        let (m, s) = (t / 60, t % 60);
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s:02}s")
        }
    } else {
        let (h, m) = (t / 3600, (t % 3600) / 60);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m:02}m")
        }
    }
}

/// At most `max` points: each of `max / 2` buckets along x keeps its minimum and maximum (in
/// time order), so peaks survive thinning. Gaps (non-finite values) are kept.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points.to_vec();
    }
    let buckets = max / 2;
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let width = ((x1 - x0) / buckets as f64).max(f64::MIN_POSITIVE);
    let mut out = Vec::with_capacity(max + 2);
    let mut i = 0;
    while i < points.len() {
        let b = ((points[i].0 - x0) / width).floor();
        let mut j = i;
        let (mut lo, mut hi): (Option<usize>, Option<usize>) = (None, None);
        let mut gap = false;
        while j < points.len() && ((points[j].0 - x0) / width).floor() == b {
            let v = points[j].1;
            if v.is_finite() {
                if lo.is_none_or(|k| v < points[k].1) {
                    lo = Some(j);
                }
                if hi.is_none_or(|k| v > points[k].1) {
                    hi = Some(j);
                }
            } else {
                gap = true;
            }
            j += 1;
        }
        match (lo, hi) {
            (Some(a), Some(b)) if a == b => out.push(points[a]),
            (Some(a), Some(b)) => {
                out.push(points[a.min(b)]);
                out.push(points[a.max(b)]);
            }
            _ => {}
        }
        if gap {
            out.push((points[j - 1].0, f64::NAN));
        }
        i = j;
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 230.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;

/// One line to draw: legend text, colour, dash pattern, points.
struct Line<'a> {
    label: String,
    colour: &'a str,
    dash: &'a str,
    points: Vec<(f64, f64)>,
}

fn svg_chart(lines: &[Line<'_>], xmax: f64) -> String {
    let xmax = if xmax > 0.0 { xmax } else { 1.0 };
    let data_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1).filter(|v| v.is_finite()))
        .fold(0.0f64, f64::max);
    // Small series (a few cents of cost) keep their own scale; the top is a round number.
    // Counts (replicas, nodes) keep whole-number grid lines.
    let counts = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1).filter(|v| v.is_finite()))
        .all(|v| v.fract() == 0.0);
    let mut ystep = nice_step(if data_max > 0.0 { data_max } else { 1.0 }, 4.0);
    if counts {
        ystep = ystep.max(1.0);
    }
    let ymax = (data_max / ystep).ceil().max(1.0) * ystep;
    let px = |x: f64| LEFT + x / xmax * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - y / ymax) * (H - TOP - BOTTOM);
    let mut out = format!(
        r#"<svg viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg" data-xmax="{xmax}">"#
    );
    let mut v = 0.0;
    while v <= ymax + ystep / 2.0 {
        let y = py(v);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text class="ax" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 5.0,
            y + 4.0,
            tick_label(v, ystep)
        );
        v += ystep;
    }
    let xstep = time_step(xmax, 8.0);
    let mut t = 0.0;
    while t <= xmax + 1e-9 {
        let x = px(t);
        let _ = write!(
            out,
            r#"<line class="grid2" x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}"/><text class="ax" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            H - BOTTOM,
            H - BOTTOM + 15.0,
            time_label(t)
        );
        t += xstep;
    }
    for l in lines {
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in &l.points {
            if y.is_finite() && x.is_finite() {
                if let Some(r) = runs.last_mut() {
                    r.push((px(x), py(y)));
                }
            } else if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
        }
        let dash = if l.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, l.dash)
        };
        for r in runs.iter().filter(|r| !r.is_empty()) {
            if let [(cx, cy)] = r.as_slice() {
                let _ = write!(
                    out,
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="1.8" fill="{}"/>"#,
                    l.colour
                );
            } else {
                let pts: Vec<String> = r.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    out,
                    r#"<polyline fill="none" stroke="{}" stroke-width="1.6"{dash} points="{}"><title>{}</title></polyline>"#,
                    l.colour,
                    pts.join(" "),
                    esc(&l.label)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

fn legend(lines: &[Line<'_>]) -> String {
    let mut o = String::from(r#"<div class="legend">"#);
    for l in lines {
        let dash = if l.dash.is_empty() {
            String::new()
        } else {
            format!(r#" stroke-dasharray="{}""#, l.dash)
        };
        let _ = write!(
            o,
            r#"<span><svg width="22" height="8"><line x1="0" y1="4" x2="22" y2="4" stroke="{}" stroke-width="2.5"{dash}/></svg>{}</span>"#,
            l.colour,
            esc(&l.label)
        );
    }
    o.push_str("</div>");
    o
}

/// Chart titles in first-seen order across the runs.
fn chart_titles(runs: &[Run]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in runs {
        for c in &r.charts {
            if !out.iter().any(|(t, _)| *t == c.title) {
                out.push((c.title.clone(), c.unit.clone()));
            }
        }
    }
    out
}

fn charts_html(runs: &[Run]) -> String {
    let xmax = runs
        .iter()
        .flat_map(|r| r.charts.iter())
        .flat_map(|c| c.series.iter())
        .filter_map(|s| s.points.last().map(|p| p.0))
        .fold(0.0f64, f64::max);
    let several = runs.len() > 1;
    let mut out = String::from(r#"<section class="charts">"#);
    for (title, unit) in chart_titles(runs) {
        let mut lines = Vec::new();
        for (ri, r) in runs.iter().enumerate() {
            let Some(c) = r.charts.iter().find(|c| c.title == title) else {
                continue;
            };
            for (si, s) in c.series.iter().enumerate() {
                let (colour, dash, label) = if several {
                    (
                        PALETTE[ri % PALETTE.len()],
                        DASHES[si % DASHES.len()],
                        format!("{} · {}", r.name, s.name),
                    )
                } else {
                    (
                        s.colour.as_deref().unwrap_or(PALETTE[si % PALETTE.len()]),
                        "",
                        s.name.clone(),
                    )
                };
                lines.push(Line {
                    label,
                    colour,
                    dash,
                    points: thin(&s.points, MAX_POINTS),
                });
            }
        }
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(r#" <span class="unit">({})</span>"#, esc(&unit))
        };
        let _ = write!(
            out,
            r#"<figure class="chart"><figcaption>{}{unit}</figcaption>{}{}</figure>"#,
            esc(&title),
            legend(&lines),
            svg_chart(&lines, xmax)
        );
    }
    out.push_str("</section>");
    out
}

fn problems_html(r: &Run) -> String {
    let mut o = String::new();
    if r.problems.is_empty() {
        o.push_str(r#"<p class="ok">✓ Nothing went wrong.</p>"#);
    } else {
        o.push_str(r#"<div class="problems"><b>What went wrong</b><ul>"#);
        for p in &r.problems {
            let _ = write!(o, "<li>{}</li>", esc(p));
        }
        o.push_str("</ul></div>");
    }
    if !r.notes.is_empty() {
        o.push_str(r#"<ul class="notes">"#);
        for n in &r.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>");
    }
    o
}

fn headline_html(p: &Page) -> String {
    let mut o = String::from(r#"<section class="headline">"#);
    if !p.what_ran.is_empty() {
        o.push_str(r#"<dl class="ran">"#);
        for (k, v) in &p.what_ran {
            let _ = write!(o, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(v));
        }
        o.push_str("</dl>");
    }
    match p.runs.as_slice() {
        [] => o.push_str("<p>No run to report.</p>"),
        [r] => {
            let _ = write!(o, r#"<p class="outcome">{}</p>"#, esc(&r.outcome));
            if !r.summary.is_empty() {
                o.push_str(r#"<dl class="words">"#);
                for (k, v) in &r.summary {
                    let _ = write!(o, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
                }
                o.push_str("</dl>");
            }
            o.push_str(r#"<div class="cards">"#);
            for f in &r.figures {
                let _ = write!(
                    o,
                    r#"<div class="card{}"><div class="v">{}</div><div class="l">{}</div></div>"#,
                    if f.bad { " bad" } else { "" },
                    esc(&f.value),
                    esc(&f.label)
                );
            }
            o.push_str("</div>");
            o.push_str(&problems_html(r));
        }
        runs => {
            let mut labels: Vec<&str> = Vec::new();
            for r in runs {
                for f in &r.figures {
                    if !labels.contains(&f.label.as_str()) {
                        labels.push(&f.label);
                    }
                }
            }
            o.push_str(r#"<table class="compare"><thead><tr><th>run</th>"#);
            for l in &labels {
                let _ = write!(o, "<th>{}</th>", esc(l));
            }
            o.push_str("<th>what went wrong</th></tr></thead><tbody>");
            for (ri, r) in runs.iter().enumerate() {
                let _ = write!(
                    o,
                    r#"<tr><th><span class="swatch" style="background:{}"></span>{}</th>"#,
                    PALETTE[ri % PALETTE.len()],
                    esc(&r.name)
                );
                for l in &labels {
                    match r.figures.iter().find(|f| f.label == *l) {
                        Some(f) => {
                            let _ = write!(
                                o,
                                "<td{}>{}</td>",
                                if f.bad { r#" class="bad""# } else { "" },
                                esc(&f.value)
                            );
                        }
                        None => o.push_str("<td>–</td>"),
                    }
                }
                if r.problems.is_empty() {
                    o.push_str(r#"<td class="okc">nothing</td>"#);
                } else {
                    let _ = write!(o, r#"<td class="bad">{}</td>"#, esc(&r.problems.join(" ")));
                }
                o.push_str("</tr>");
            }
            o.push_str("</tbody></table>");
            for r in runs {
                let _ = write!(
                    o,
                    r#"<p class="outcome small"><b>{}</b>: {}</p>"#,
                    esc(&r.name),
                    esc(&r.outcome)
                );
                if !r.notes.is_empty() {
                    o.push_str(r#"<ul class="notes">"#);
                    for n in &r.notes {
                        let _ = write!(o, "<li>{}</li>", esc(n));
                    }
                    o.push_str("</ul>");
                }
            }
        }
    }
    o.push_str("</section>");
    o
}

fn decisions_html(runs: &[Run]) -> String {
    let several = runs.len() > 1;
    let total: usize = runs.iter().map(|r| r.decisions.len()).sum();
    let kinds: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.decisions.iter().map(|d| d.kind.as_str()))
        .collect();
    let mut o = String::from(r#"<section id="decisions"><h2>Decisions</h2><div class="filters">"#);
    o.push_str(r#"<input id="q" type="search" placeholder="search the decisions (e.g. m5.xlarge, scale, drain)" oninput="filt()">"#);
    o.push_str(r#"<select id="k" onchange="filt()"><option value="">every kind</option>"#);
    for k in &kinds {
        let _ = write!(o, r#"<option>{}</option>"#, esc(k));
    }
    o.push_str("</select>");
    if several {
        o.push_str(r#"<select id="r" onchange="filt()"><option value="">every run</option>"#);
        for r in runs {
            let _ = write!(o, r#"<option>{}</option>"#, esc(&r.name));
        }
        o.push_str("</select>");
    }
    let _ = write!(
        o,
        r#"<span id="cnt">{total} of {total}</span></div><div class="logwrap"><table id="log"><thead><tr><th>time</th>{}<th>kind</th><th>decision and reason</th></tr></thead><tbody>"#,
        if several { "<th>run</th>" } else { "" }
    );
    let mut rows: Vec<(u64, usize, &Decision)> = runs
        .iter()
        .enumerate()
        .flat_map(|(ri, r)| r.decisions.iter().map(move |d| (d.at_ms, ri, d)))
        .collect();
    rows.sort_by_key(|(t, ri, _)| (*t, *ri));
    for (t, ri, d) in rows {
        let run = &runs[ri].name;
        let _ = write!(
            o,
            r#"<tr data-kind="{}" data-run="{}"><td class="t">{:.1}s</td>{}<td><span class="kind k-{}">{}</span></td><td>{}</td></tr>"#,
            esc(&d.kind),
            esc(run),
            t as f64 / 1000.0,
            if several {
                format!("<td>{}</td>", esc(run))
            } else {
                String::new()
            },
            esc(&d.kind),
            esc(&d.kind),
            esc(&d.text)
        );
    }
    o.push_str("</tbody></table></div></section>");
    o
}

fn details_html(runs: &[Run]) -> String {
    let mut keys: Vec<&str> = Vec::new();
    for r in runs {
        for (k, _) in &r.details {
            if !keys.contains(&k.as_str()) {
                keys.push(k);
            }
        }
    }
    if let [r] = runs {
        // One run: a compact grid of key → value rather than a page-long table.
        let mut o = String::from(r#"<section id="details"><h2>Every figure</h2><dl class="kv">"#);
        for (k, v) in &r.details {
            let _ = write!(o, "<div><dt>{}</dt><dd>{}</dd></div>", esc(k), esc(v));
        }
        o.push_str("</dl></section>");
        return o;
    }
    let mut o = String::from(
        r#"<section id="details"><h2>Every figure</h2><table class="details"><thead><tr><th>key</th>"#,
    );
    for r in runs {
        let _ = write!(o, "<th>{}</th>", esc(&r.name));
    }
    o.push_str("</tr></thead><tbody>");
    for k in keys {
        let _ = write!(o, "<tr><td>{}</td>", esc(k));
        for r in runs {
            let v = r
                .details
                .iter()
                .find(|(kk, _)| kk == k)
                .map_or("", |(_, v)| v.as_str());
            let _ = write!(o, "<td>{}</td>", esc(v));
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table></section>");
    o
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2433;margin:0;background:#f4f6f9}
main{max-width:1360px;margin:0 auto;padding:20px 28px 48px}
h1{font-size:22px;margin:4px 0 10px}
h2{font-size:17px;margin:28px 0 10px}
.headline{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:16px 20px}
dl.ran{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0 0 12px;color:#4a5468;font-size:13px}
dl.ran div{display:flex;gap:6px}dl.ran dt{font-weight:600}dl.ran dd{margin:0}
.outcome{font-size:18px;font-weight:600;margin:6px 0 14px}
.outcome.small{font-size:14px;font-weight:400;margin:6px 0}
dl.words{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0 0 14px}
dl.words dt{font-weight:600;color:#4a5468}dl.words dd{margin:0}
dl.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:0 18px;background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:8px 14px;font-size:13px;font-variant-numeric:tabular-nums}
dl.kv div{display:flex;justify-content:space-between;gap:10px;border-bottom:1px solid #f0f2f5;padding:3px 0}
dl.kv dt{color:#4a5468}dl.kv dd{margin:0;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{border:1px solid #e1e6ee;border-radius:6px;padding:8px 12px;background:#fbfcfe}
.card .v{font-size:19px;font-weight:600;font-variant-numeric:tabular-nums}
.card .l{font-size:12px;color:#5b667a}
.card.bad{border-color:#e8a3a3;background:#fdf2f2}.card.bad .v{color:#b42318}
.ok{color:#1a7f37;font-weight:600;margin:14px 0 4px}
.problems{margin:14px 0 4px;padding:8px 14px;border-left:4px solid #d92d20;background:#fef3f2}
.problems ul{margin:4px 0 0;padding-left:20px}
.notes{color:#4a5468;margin:8px 0 0;padding-left:20px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #e1e6ee;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f0f3f7;position:sticky;top:0}
table.compare{margin:4px 0 10px;font-variant-numeric:tabular-nums}
td.bad{color:#b42318;font-weight:600}td.okc{color:#1a7f37}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:14px;margin-top:18px}
.chart{margin:0;background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 12px 4px}
.chart figcaption{font-weight:600}.unit{color:#6b7588;font-weight:400}
.legend{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12px;color:#3b4556;margin:2px 0}
.legend span{display:inline-flex;align-items:center;gap:5px}
.chart svg[role=img]{width:100%;height:auto;display:block}
.grid{stroke:#e6e9ef}.grid2{stroke:#f1f3f6}.ax{font-size:11px;fill:#6b7588}
.filters{display:flex;gap:10px;align-items:center;margin-bottom:8px;flex-wrap:wrap}
.filters input{flex:1;min-width:260px;padding:6px 9px;border:1px solid #c9d1dd;border-radius:6px;font:inherit}
.filters select{padding:5px;border:1px solid #c9d1dd;border-radius:6px;font:inherit}
#cnt{color:#5b667a;font-size:13px}
.logwrap{max-height:560px;overflow:auto;border:1px solid #dde2ea;border-radius:6px}
#log{width:100%;font-size:13px}#log td.t{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums;color:#5b667a}
#log td,#log th{border-width:0 0 1px 0}
.kind{font-size:11px;padding:1px 6px;border-radius:9px;background:#eef1f6;white-space:nowrap}
.k-scale{background:#e3efff}.k-provision{background:#e6f6ea}.k-disrupt{background:#fdecea}.k-node{background:#f3ecfb}.k-pod{background:#fff4e0}
table.details{font-size:13px;font-variant-numeric:tabular-nums}
@media (max-width:700px){main{padding:12px}.charts{grid-template-columns:1fr}}
"#;

const SCRIPT: &str = r#"
function filt(){
  var q=document.getElementById('q').value.toLowerCase().trim();
  var k=document.getElementById('k').value;
  var re=document.getElementById('r'), r=re?re.value:'';
  var rows=document.querySelectorAll('#log tbody tr'), n=0;
  for(var i=0;i<rows.length;i++){
    var e=rows[i];
    var ok=(!k||e.dataset.kind===k)&&(!r||e.dataset.run===r)&&(!q||e.textContent.toLowerCase().indexOf(q)>=0);
    e.style.display=ok?'':'none'; if(ok)n++;
  }
  document.getElementById('cnt').textContent=n+' of '+rows.length;
}
// report.html#q=m5.xlarge opens with the log filtered (a link to what someone should read).
if(location.hash.indexOf('#q=')===0){
  document.getElementById('q').value=decodeURIComponent(location.hash.slice(3));
  filt();
}
"#;

/// The page as one self-contained HTML document.
pub fn render(p: &Page) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main><h1>{}</h1>",
        esc(&p.title),
        esc(&p.title)
    );
    o.push_str(&headline_html(p));
    o.push_str(&charts_html(&p.runs));
    o.push_str(&decisions_html(&p.runs));
    o.push_str(&details_html(&p.runs));
    let _ = writeln!(o, "</main><script>{SCRIPT}</script></body></html>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, problems: Vec<String>) -> Run {
        Run {
            name: name.into(),
            outcome: format!("{name}: 10 sent, 10 processed"),
            summary: vec![("Cost".into(), "$0.01 over 0.1 node hours".into())],
            figures: vec![
                Figure::new("cost", "$0.01"),
                Figure::new("lost", "1").bad_if(!problems.is_empty()),
            ],
            problems,
            notes: vec![],
            charts: vec![Chart {
                title: "Queue depth".into(),
                unit: "messages".into(),
                series: vec![Series {
                    name: "visible".into(),
                    points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 4.0)],
                    colour: None,
                }],
            }],
            decisions: vec![Decision {
                at_ms: 1500,
                kind: "scale".into(),
                text: "replicas 1 -> 3: metric <6> / target 2".into(),
            }],
            details: vec![("lost_messages".into(), "0".into())],
        }
    }

    #[test]
    fn one_run_reads_headline_charts_decisions_then_details() {
        let p = Page {
            title: "kedge up: demo".into(),
            what_ran: vec![("scenario".into(), "demo".into())],
            runs: vec![run("demo", vec![])],
        };
        let h = render(&p);
        let at = |s: &str| h.find(s).unwrap_or_else(|| panic!("{s:?} missing"));
        assert!(at("demo: 10 sent") < at("$0.01 over 0.1 node hours"));
        assert!(at("$0.01 over 0.1 node hours") < at("<section class=\"charts\""));
        assert!(at("<section class=\"charts\"") < at("id=\"decisions\""));
        assert!(at("id=\"decisions\"") < at("id=\"details\""));
        assert!(h.contains("Nothing went wrong"));
        // Escaped, and the gap splits the line: one dot, one polyline.
        assert!(h.contains("metric &lt;6&gt; / target 2"));
        assert_eq!(h.matches("<polyline").count(), 1);
        assert_eq!(h.matches("<circle").count(), 1);
        assert!(
            !h.contains("src=") && !h.contains("href="),
            "self-contained"
        );
    }

    #[test]
    fn several_runs_are_compared_in_one_table_and_overlaid() {
        let p = Page {
            title: "kedge simulate".into(),
            what_ran: vec![],
            runs: vec![
                run("kedge", vec![]),
                run("keda-karpenter", vec!["3 messages lost.".into()]),
            ],
        };
        let h = render(&p);
        assert!(h.contains("<table class=\"compare\">"));
        assert!(h.contains("<td class=\"bad\">3 messages lost.</td>"));
        assert!(h.contains("kedge · visible") && h.contains("keda-karpenter · visible"));
        assert!(h.contains("<select id=\"r\""), "a run filter for the log");
        assert_eq!(
            h.matches("<figure class=\"chart\">").count(),
            1,
            "one chart, overlaid"
        );
    }

    #[test]
    fn long_series_are_thinned_keeping_peaks() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 5_003 { 1e6 } else { (i % 7) as f64 }))
            .collect();
        let t = thin(&pts, 1000);
        assert!(t.len() <= 1002, "{}", t.len());
        assert!(t.iter().any(|p| p.1 == 1e6), "the peak survives");
        assert!(t.windows(2).all(|w| w[0].0 <= w[1].0), "time order kept");
    }

    #[test]
    fn axis_labels() {
        assert_eq!(tick_label(4.0, 1.0), "4");
        assert_eq!(tick_label(150.0, 50.0), "150");
        assert_eq!(tick_label(0.4, 0.2), "0.4");
        assert_eq!(tick_label(0.03, 0.01), "0.03");
        assert_eq!(nice_step(6.0, 4.0), 2.0);
        assert_eq!(nice_step(0.0203, 4.0), 0.01);
        assert_eq!(time_label(45.0), "45s");
        assert_eq!(time_label(240.0), "4m");
        assert_eq!(time_label(270.0), "4m30s");
        assert_eq!(time_label(5400.0), "90m");
        assert_eq!(time_label(9000.0), "2h30m");
        assert_eq!(time_step(240.0, 8.0), 30.0);
        assert_eq!(time_step(36_000.0, 8.0), 7200.0);
    }
}
