//! The live view (ratatui): a header (scenario, time, state), the figures (queue, replicas,
//! nodes by type, cost, throughput and latency over the recent window from `up/live.rs`),
//! charts over the run that rescale as it goes (queue depth, replicas, nodes by state, cost
//! rate and total, throughput, latency p50/p99), the latest decisions with their reasons in a
//! panel sized to its content, and a footer with the keys and where the log lines go.
//!
//! Keys: `p` pauses the view (the run goes on), `c` / `d` / `f` show or hide the charts, the
//! decisions and the figures, `Tab` / `→` / `←` page through the charts when they do not all
//! fit, `q`, `Esc` or Ctrl-C end the run early (raw mode: Ctrl-C arrives as a key, not as
//! SIGINT).
//!
//! Nothing else writes to the terminal while the view is up: log lines go to `kedge.log`
//! (`logging::mute_console`), the consumers' to the same file. Every frame is drawn whole
//! (ratatui diffs it) and the terminal's size is read before each frame, so a resize redraws
//! cleanly, and at once when the resize event arrives.

use std::io;
use std::time::Duration;

use cluster::local::Snapshot;
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::live::{LiveStats, WINDOW};
use super::report::Sample;
use crate::report_html::{nice_step, time_label};

/// One decision line: when (seconds into the run), which kind, and the text with its reason.
#[derive(Debug, Clone)]
pub struct DecisionLine {
    pub t_s: f64,
    pub kind: &'static str,
    pub text: String,
}

/// What one frame shows.
pub struct View<'a> {
    pub title: &'a str,
    pub elapsed_s: f64,
    pub total_s: f64,
    pub visible: u64,
    pub in_flight: u64,
    pub snap: &'a Snapshot,
    pub stats: LiveStats,
    /// The run's samples so far (about one a second).
    pub samples: &'a [Sample],
    /// Newest first.
    pub decisions: Vec<DecisionLine>,
}

/// A copy of a frame's data, kept while the view is paused (a resize redraws from it).
struct Frozen {
    title: String,
    elapsed_s: f64,
    total_s: f64,
    visible: u64,
    in_flight: u64,
    snap: Snapshot,
    stats: LiveStats,
    samples: Vec<Sample>,
    decisions: Vec<DecisionLine>,
}

impl Frozen {
    fn of(v: &View<'_>) -> Frozen {
        Frozen {
            title: v.title.to_string(),
            elapsed_s: v.elapsed_s,
            total_s: v.total_s,
            visible: v.visible,
            in_flight: v.in_flight,
            snap: v.snap.clone(),
            stats: v.stats,
            samples: v.samples.to_vec(),
            decisions: v.decisions.clone(),
        }
    }

    fn view(&self) -> View<'_> {
        View {
            title: &self.title,
            elapsed_s: self.elapsed_s,
            total_s: self.total_s,
            visible: self.visible,
            in_flight: self.in_flight,
            snap: &self.snap,
            stats: self.stats,
            samples: &self.samples,
            decisions: self.decisions.clone(),
        }
    }
}

/// What is shown, and the throughput / latency history the charts need.
pub struct State {
    pub log_path: String,
    pub paused: bool,
    pub show_figures: bool,
    pub show_charts: bool,
    pub show_decisions: bool,
    /// First chart shown when they do not all fit.
    pub chart_page: usize,
    /// (t_s, throughput, p50 s, p99 s) about once a second: the recent-window figures as
    /// they were at each moment.
    pub stats_history: Vec<(f64, f64, f64, f64)>,
}

impl State {
    pub fn new(log_path: String) -> State {
        State {
            log_path,
            paused: false,
            show_figures: true,
            show_charts: true,
            show_decisions: true,
            chart_page: 0,
            stats_history: Vec::new(),
        }
    }

    fn record(&mut self, v: &View<'_>) {
        if self
            .stats_history
            .last()
            .is_none_or(|l| v.elapsed_s - l.0 >= 1.0)
        {
            let nan = f64::NAN;
            self.stats_history.push((
                v.elapsed_s,
                v.stats.throughput,
                v.stats.p50_ms.map_or(nan, |x| x as f64 / 1000.0),
                v.stats.p99_ms.map_or(nan, |x| x as f64 / 1000.0),
            ));
        }
    }

    /// Apply one key; true when it asks to quit.
    pub fn key(&mut self, code: KeyCode, mods: KeyModifiers) -> bool {
        match code {
            KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => return true,
            KeyCode::Char('q') | KeyCode::Esc => return true,
            KeyCode::Char('p') | KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Char('c') => self.show_charts = !self.show_charts,
            KeyCode::Char('d') => self.show_decisions = !self.show_decisions,
            KeyCode::Char('f') => self.show_figures = !self.show_figures,
            KeyCode::Tab | KeyCode::Right => self.chart_page = self.chart_page.wrapping_add(1),
            KeyCode::BackTab | KeyCode::Left => {
                self.chart_page = self.chart_page.checked_sub(1).unwrap_or(usize::MAX)
            }
            _ => {}
        }
        false
    }
}

pub struct Live {
    term: ratatui::DefaultTerminal,
    state: State,
    frozen: Option<Frozen>,
}

impl Live {
    /// Take over the terminal; log lines stop going to it until the view is dropped.
    pub fn start(log_path: String) -> io::Result<Live> {
        let term = ratatui::try_init()?;
        crate::logging::mute_console(true);
        Ok(Live {
            term,
            state: State::new(log_path),
            frozen: None,
        })
    }

    /// Handle the keys pressed since the last call; true when one asked to quit.
    pub fn quit_requested(&mut self) -> bool {
        let mut redraw = false;
        while event::poll(Duration::ZERO).unwrap_or(false) {
            match event::read() {
                Ok(Event::Key(k)) if k.kind != event::KeyEventKind::Release => {
                    if self.state.key(k.code, k.modifiers) {
                        return true;
                    }
                    redraw = true;
                }
                Ok(Event::Resize(..)) => redraw = true,
                _ => {}
            }
        }
        if redraw && let Some(f) = &self.frozen {
            // Paused: show the key's effect (or the new size) on the frozen frame now.
            let v = f.view();
            let state = &self.state;
            let _ = self.term.draw(|fr| render(fr, &v, state));
        }
        false
    }

    pub fn draw(&mut self, v: &View<'_>) -> io::Result<()> {
        if self.state.paused {
            if self.frozen.is_none() {
                self.frozen = Some(Frozen::of(v));
            }
        } else {
            self.frozen = None;
            self.state.record(v);
        }
        let state = &self.state;
        match &self.frozen {
            Some(f) => {
                let fv = f.view();
                self.term.draw(|fr| render(fr, &fv, state))?;
            }
            None => {
                self.term.draw(|fr| render(fr, v, state))?;
            }
        }
        Ok(())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
        crate::logging::mute_console(false);
    }
}

const KIND_COLOURS: [(&str, Color); 5] = [
    ("scale", Color::Cyan),
    ("provision", Color::Green),
    ("disrupt", Color::Red),
    ("node", Color::Magenta),
    ("pod", Color::Yellow),
];

fn kind_colour(kind: &str) -> Color {
    KIND_COLOURS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(Color::Gray, |(_, c)| *c)
}

fn ms(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 10_000 => format!("{:.0}s", v as f64 / 1000.0),
        Some(v) if v >= 1000 => format!("{:.1}s", v as f64 / 1000.0),
        Some(v) => format!("{v}ms"),
    }
}

fn label(s: &str) -> Span<'static> {
    Span::styled(s.to_string(), Style::new().fg(Color::DarkGray))
}

fn fig(s: String) -> Span<'static> {
    Span::styled(s, Style::new().add_modifier(Modifier::BOLD))
}

/// The figures, as lines that fit `width` (narrow terminals get more, shorter lines).
fn figure_lines(v: &View<'_>, width: u16) -> Vec<Line<'static>> {
    let s = v.snap;
    let queue = vec![
        label("queue "),
        fig(v.visible.to_string()),
        label(" visible / "),
        fig(v.in_flight.to_string()),
        label(" in flight"),
        label("  metric "),
        fig(s.last_metric.map_or("-".into(), |m| format!("{m:.0}"))),
    ];
    let replicas = vec![
        label("replicas "),
        fig(s.desired.to_string()),
        label(" desired / "),
        fig(s.running.to_string()),
        label(" running / "),
        fig(s.pending.to_string()),
        label(" pending / "),
        fig(s.terminating.to_string()),
        label(" stopping"),
    ];
    let mut nodes = vec![
        label("nodes "),
        fig(s.nodes_ready.to_string()),
        label(" ready / "),
        fig(s.nodes_launching.to_string()),
        label(" launching / "),
        fig(s.nodes_draining.to_string()),
        label(" draining "),
    ];
    for (t, (r, l, d)) in &s.nodes_by_type {
        let mut txt = format!(" {t} {r}");
        if *l > 0 {
            txt.push_str(&format!("+{l}↑"));
        }
        if *d > 0 {
            txt.push_str(&format!("-{d}↓"));
        }
        nodes.push(Span::styled(txt, Style::new().fg(Color::Blue)));
    }
    let cost = vec![
        label("cost "),
        fig(format!("${:.3}/h", s.cost_per_hour)),
        label(" · "),
        fig(format!("${:.4}", s.cost_usd)),
        label(" so far"),
    ];
    let flow = vec![
        label("throughput "),
        fig(format!("{:.1} msg/s", v.stats.throughput)),
        label("  latency p50 "),
        fig(ms(v.stats.p50_ms)),
        label(" p99 "),
        fig(ms(v.stats.p99_ms)),
        label(&format!(" (last {}s)", WINDOW.as_secs())),
    ];
    let len = |spans: &[Span<'_>]| spans.iter().map(|s| s.width()).sum::<usize>();
    let w = usize::from(width.saturating_sub(2));
    let join = |mut a: Vec<Span<'static>>, b: Vec<Span<'static>>| {
        a.push(Span::raw("   "));
        a.extend(b);
        a
    };
    let mut out = Vec::new();
    if len(&queue) + len(&replicas) + 3 <= w {
        out.push(Line::from(join(queue, replicas)));
    } else {
        out.push(Line::from(queue));
        out.push(Line::from(replicas));
    }
    out.push(Line::from(nodes));
    if len(&cost) + len(&flow) + 3 <= w {
        out.push(Line::from(join(cost, flow)));
    } else {
        out.push(Line::from(cost));
        out.push(Line::from(flow));
    }
    out
}

/// Rows a paragraph of `lines` takes at `width` when wrapped.
fn wrapped_rows(lines: &[Line<'_>], width: u16) -> u16 {
    let w = usize::from(width.max(1));
    lines
        .iter()
        .map(|l| l.width().max(1).div_ceil(w) as u16)
        .sum()
}

/// A line on a chart: name, colour, points.
type Plot<N> = (N, Color, Vec<(f64, f64)>);

/// One chart: title (with its unit) and its series.
struct ChartSpec {
    title: &'static str,
    series: Vec<Plot<String>>,
}

const TYPE_COLOURS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::LightRed,
];

fn chart_specs(v: &View<'_>, st: &State) -> Vec<ChartSpec> {
    let s = v.samples;
    let pts = |g: &dyn Fn(&Sample) -> f64| s.iter().map(|x| (x.t_s, g(x))).collect::<Vec<_>>();
    let hist = |i: usize| {
        st.stats_history
            .iter()
            .map(|h| {
                (
                    h.0,
                    match i {
                        1 => h.1,
                        2 => h.2,
                        _ => h.3,
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    let named = |v: Vec<Plot<&str>>| {
        v.into_iter()
            .map(|(n, c, p)| (n.to_string(), c, p))
            .collect::<Vec<_>>()
    };
    let mut types: Vec<&String> = s.iter().flat_map(|x| x.type_counts.keys()).collect();
    types.sort();
    types.dedup();
    vec![
        ChartSpec {
            title: "queue",
            series: named(vec![
                ("visible", Color::Cyan, pts(&|x| x.visible as f64)),
                ("in flight", Color::Yellow, pts(&|x| x.in_flight as f64)),
            ]),
        },
        ChartSpec {
            title: "replicas",
            series: named(vec![
                ("desired", Color::Green, pts(&|x| f64::from(x.desired))),
                ("running", Color::Cyan, pts(&|x| f64::from(x.running))),
                ("pending", Color::Red, pts(&|x| f64::from(x.pending))),
            ]),
        },
        ChartSpec {
            title: "nodes",
            series: named(vec![
                ("ready", Color::Cyan, pts(&|x| f64::from(x.nodes_ready))),
                (
                    "launching",
                    Color::Yellow,
                    pts(&|x| f64::from(x.nodes_launching)),
                ),
                (
                    "draining",
                    Color::Red,
                    pts(&|x| f64::from(x.nodes_draining)),
                ),
            ]),
        },
        ChartSpec {
            title: "nodes by type",
            series: types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        t.to_string(),
                        TYPE_COLOURS[i % TYPE_COLOURS.len()],
                        pts(&|x| f64::from(x.type_counts.get(*t).copied().unwrap_or(0))),
                    )
                })
                .collect(),
        },
        ChartSpec {
            title: "cost rate $/h",
            series: named(vec![("$/h", Color::Magenta, pts(&|x| x.cost_per_hour))]),
        },
        ChartSpec {
            title: "cost so far $",
            series: named(vec![("$", Color::LightMagenta, pts(&|x| x.cost_usd))]),
        },
        ChartSpec {
            title: "throughput msg/s",
            series: named(vec![("msg/s", Color::Cyan, hist(1))]),
        },
        ChartSpec {
            title: "latency s",
            series: named(vec![
                ("p50", Color::Green, hist(2)),
                ("p99", Color::Red, hist(3)),
            ]),
        },
    ]
}

/// A series' latest value for a title: `12`, `0.192`, `1.5`.
fn value_text(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.0}")
    } else if v.abs() < 0.1 {
        format!("{v:.4}")
    } else if v.abs() < 10.0 {
        format!("{v:.2}")
    } else if v.abs() < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// The chart's title for `width` columns: the most that fits of name, series and values.
fn chart_title(c: &ChartSpec, width: u16) -> Line<'static> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let full = |values: bool, names: bool, title: bool| {
        let mut spans = Vec::new();
        if title {
            spans.push(Span::styled(format!(" {} ", c.title), bold));
        } else {
            spans.push(Span::raw(" "));
        }
        for (name, colour, pts) in &c.series {
            let mut t = String::from("━");
            if names {
                t.push_str(name);
            }
            if values && let Some(p) = pts.last() {
                if names {
                    t.push(' ');
                }
                t.push_str(&value_text(p.1));
            }
            t.push(' ');
            spans.push(Span::styled(t, Style::new().fg(*colour)));
        }
        Line::from(spans)
    };
    let room = usize::from(width.saturating_sub(2));
    for (v, n, t) in [
        (true, true, true),
        (false, true, true),
        (true, false, true),
        (false, false, true),
    ] {
        let l = full(v, n, t);
        if l.width() <= room {
            return l;
        }
    }
    Line::from(Span::styled(format!(" {} ", c.title), bold))
}

/// `12`, `1.5k`, `0.03`: short labels for a small chart's y axis.
fn short(v: f64, step: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 && step >= 100.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        crate::report_html::tick_label(v, step)
    }
}

fn draw_chart(f: &mut Frame<'_>, area: Rect, c: &ChartSpec, xmax: f64) {
    let ymax_data = c
        .series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let step = nice_step(if ymax_data > 0.0 { ymax_data } else { 1.0 }, 2.0);
    let ymax = (ymax_data / step).ceil().max(1.0) * step;
    let title = chart_title(c, area.width);
    // A gap (no value: no item written in the window) splits a line in pieces.
    let pieces: Vec<(Color, Vec<(f64, f64)>)> = c
        .series
        .iter()
        .flat_map(|(_, colour, pts)| {
            pts.split(|p| !p.1.is_finite())
                .filter(|run| !run.is_empty())
                .map(|run| (*colour, run.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let datasets = pieces
        .iter()
        .map(|(colour, pts)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*colour))
                .data(pts)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(Style::new().fg(Color::DarkGray))
                .title(title),
        )
        .x_axis(
            Axis::default()
                .bounds([0.0, xmax])
                .style(Style::new().fg(Color::DarkGray))
                .labels([time_label(0.0), time_label(xmax / 2.0), time_label(xmax)]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, ymax])
                .style(Style::new().fg(Color::DarkGray))
                .labels([
                    "0".to_string(),
                    short(ymax / 2.0, step / 2.0),
                    short(ymax, step),
                ]),
        )
        // The series' names are in the title: no legend box over the lines.
        .hidden_legend_constraints((Constraint::Length(0), Constraint::Length(0)));
    f.render_widget(chart, area);
}

const MIN_CHART_W: u16 = 38;
const MIN_CHART_H: u16 = 8;

pub fn render(f: &mut Frame<'_>, v: &View<'_>, st: &State) {
    let area = f.area();
    // Header and footer: one line each.
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    let progress = if v.total_s > 0.0 {
        (v.elapsed_s / v.total_s).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let bar_w = 20usize;
    let filled = (progress * bar_w as f64).round() as usize;
    let mut head: Vec<Span<'static>> = vec![
        Span::styled(
            format!(" kedge up: {} ", v.title),
            Style::new().add_modifier(Modifier::BOLD).reversed(),
        ),
        Span::raw(format!(
            " {} / {} ",
            time_label(v.elapsed_s),
            time_label(v.total_s)
        )),
        Span::styled("█".repeat(filled), Style::new().fg(Color::Cyan)),
        Span::styled("░".repeat(bar_w - filled), Style::new().fg(Color::DarkGray)),
    ];
    if st.paused {
        head.push(Span::styled(
            "  ⏸ PAUSED — the run goes on; p resumes",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    } else {
        head.push(Span::styled("  ● live", Style::new().fg(Color::Green)));
    }
    f.render_widget(Paragraph::new(footer_line(st, footer.width)), footer);

    let mut rest = body;
    if st.show_figures {
        let lines = figure_lines(v, rest.width);
        let h = (wrapped_rows(&lines, rest.width.saturating_sub(2)) + 2).min(rest.height);
        let [top, below] =
            Layout::vertical([Constraint::Length(h), Constraint::Min(0)]).areas(rest);
        f.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(Style::new().fg(Color::DarkGray))
                    .title(" now "),
            ),
            top,
        );
        rest = below;
    }
    // The decisions take what their lines need, up to a third of what is left when charts
    // are shown (all of it when not).
    let mut decisions_area = None;
    if st.show_decisions {
        let lines = decision_lines(v, rest.width.saturating_sub(2));
        let want = wrapped_rows(&lines, rest.width.saturating_sub(2)).max(1) + 2;
        let cap = if st.show_charts {
            (rest.height / 3).max(4)
        } else {
            rest.height
        };
        let h = want.min(cap).min(rest.height);
        let [above, bottom] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(h)]).areas(rest);
        decisions_area = Some((bottom, lines));
        rest = above;
    }
    if st.show_charts && rest.height >= 5 {
        let (page, pages) = draw_charts(f, rest, v, st);
        if pages > 1 {
            head.push(Span::styled(
                format!("  charts {}/{pages} (Tab: more)", page + 1),
                Style::new().fg(Color::Yellow),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(head)), header);
    if let Some((a, lines)) = decisions_area {
        f.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(Style::new().fg(Color::DarkGray))
                    .title(" latest decisions (newest first) "),
            ),
            a,
        );
    }
}

/// The keys and where the logs go, as much as fits: full words, then short ones.
fn footer_line(st: &State, width: u16) -> Line<'static> {
    let pause = if st.paused { "resume" } else { "pause" };
    let logs = Span::styled(
        format!(" logs → {}", st.log_path),
        Style::new().fg(Color::DarkGray),
    );
    let long = [
        ("p", pause),
        ("c", "charts"),
        ("d", "decisions"),
        ("f", "figures"),
        ("Tab", "more charts"),
        ("q", "quit"),
    ];
    let short = [
        ("p", pause),
        ("c d f", "panels"),
        ("Tab", ""),
        ("q", "quit"),
    ];
    let build = |keys: &[(&str, &str)], with_logs: bool| {
        let mut spans: Vec<Span<'static>> = Vec::new();
        for (k, what) in keys {
            spans.push(Span::styled(format!(" {k} "), Style::new().reversed()));
            if !what.is_empty() {
                spans.push(Span::raw(format!(" {what}")));
            }
            spans.push(Span::raw(" "));
        }
        if with_logs {
            spans.push(logs.clone());
        }
        Line::from(spans)
    };
    for l in [build(&long, true), build(&short, true)] {
        if l.width() <= usize::from(width) {
            return l;
        }
    }
    // Narrower still: where the logs go matters more than the keys' names.
    Line::from(vec![Span::styled(" q ", Style::new().reversed()), logs])
}

/// Columns taken by a decision's time and kind; its text wraps under itself.
const DECISION_INDENT: usize = 19;

fn decision_lines(v: &View<'_>, width: u16) -> Vec<Line<'static>> {
    if v.decisions.is_empty() {
        return vec![Line::from(label("no decision yet"))];
    }
    let room = usize::from(width).saturating_sub(DECISION_INDENT).max(10);
    let mut out = Vec::new();
    for d in &v.decisions {
        let mut parts = wrap_words(&d.text, room).into_iter();
        out.push(Line::from(vec![
            Span::styled(
                format!("{:>7.1}s ", d.t_s),
                Style::new().fg(Color::DarkGray),
            ),
            Span::styled(
                format!("{:<9} ", d.kind),
                Style::new().fg(kind_colour(d.kind)),
            ),
            Span::raw(parts.next().unwrap_or_default()),
        ]));
        for rest in parts {
            out.push(Line::from(format!("{}{rest}", " ".repeat(DECISION_INDENT))));
        }
    }
    out
}

/// `text` in lines of at most `width` columns, broken at spaces (a longer word is cut).
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let (cw, ww) = (cur.chars().count(), word.chars().count());
            if cw == 0 && ww > width {
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
                continue;
            }
            if cw > 0 && cw + 1 + ww > width {
                lines.push(std::mem::take(&mut cur));
                continue;
            }
            if cw > 0 {
                cur.push(' ');
            }
            cur.push_str(&word);
            break;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Draw the page of charts that fits; returns (page, pages).
fn draw_charts(f: &mut Frame<'_>, area: Rect, v: &View<'_>, st: &State) -> (usize, usize) {
    let specs = chart_specs(v, st);
    let n = specs.len();
    let cols = (area.width / MIN_CHART_W).clamp(1, 4) as usize;
    let rows_fit = (area.height / MIN_CHART_H).max(1) as usize;
    let per_page = (cols * rows_fit).min(n);
    let pages = n.div_ceil(per_page);
    let page = st.chart_page % pages;
    let shown: Vec<&ChartSpec> = specs.iter().skip(page * per_page).take(per_page).collect();
    let rows = shown.len().div_ceil(cols);
    let cols_used = shown.len().min(cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(area);
    // The x axis spans the run so far (at least 10 s), so the lines fill the width and
    // rescale as the run goes.
    let xmax = v.elapsed_s.max(10.0);
    for (r, row) in row_areas.iter().enumerate() {
        let cells =
            Layout::horizontal(vec![Constraint::Ratio(1, cols_used as u32); cols_used]).split(*row);
        for (c, cell) in cells.iter().enumerate() {
            if let Some(spec) = shown.get(r * cols + c) {
                draw_chart(f, *cell, spec, xmax);
            }
        }
    }
    (page, pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    fn samples() -> Vec<Sample> {
        (0..60)
            .map(|i| {
                let snap = Snapshot {
                    desired: i / 2,
                    running: i / 3,
                    pending: i / 6,
                    nodes_ready: 2 + i / 20,
                    cost_per_hour: 0.192 + f64::from(i) * 0.01,
                    cost_usd: f64::from(i) * 0.0001,
                    ..Snapshot::default()
                };
                Sample::new(f64::from(i), u64::from(i) * 3, u64::from(i), &snap)
            })
            .collect()
    }

    fn snap() -> Snapshot {
        let mut snap = Snapshot {
            desired: 42,
            running: 30,
            pending: 12,
            nodes_ready: 4,
            nodes_launching: 2,
            cost_per_hour: 1.152,
            cost_usd: 0.0321,
            last_metric: Some(130.0),
            ..Snapshot::default()
        };
        snap.nodes_by_type.insert("m5.large".into(), (2, 0, 0));
        snap.nodes_by_type.insert("m5.2xlarge".into(), (2, 2, 0));
        snap
    }

    fn screen(w: u16, h: u16, v: &View<'_>, st: &State) -> String {
        let mut term = ratatui::Terminal::new(TestBackend::new(w, h)).expect("terminal");
        term.draw(|f| render(f, v, st)).expect("draw");
        let buf = term.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                let mut l: String = (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect();
                l.push('\n');
                l
            })
            .collect()
    }

    fn view<'a>(snap: &'a Snapshot, samples: &'a [Sample]) -> View<'a> {
        View {
            title: "demo",
            elapsed_s: 61.0,
            total_s: 240.0,
            visible: 120,
            in_flight: 30,
            snap,
            stats: LiveStats {
                throughput: 23.4,
                p50_ms: Some(1250),
                p99_ms: Some(14_000),
                items: 234,
            },
            samples,
            decisions: vec![DecisionLine {
                t_s: 60.5,
                kind: "scale",
                text: "replicas 30 -> 42: metric 130 / target 2".into(),
            }],
        }
    }

    #[test]
    fn the_view_shows_every_figure_charts_and_where_the_logs_go() {
        let (snap, samples) = (snap(), samples());
        let v = view(&snap, &samples);
        let st = State::new("kedge-report/1/kedge.log".into());
        let text = screen(160, 45, &v, &st);
        for want in [
            "120 visible / 30 in flight",
            "42 desired / 30 running / 12 pending",
            "4 ready / 2 launching",
            "m5.2xlarge 2+2↑",
            "$1.152/h · $0.0321 so far",
            "throughput 23.4 msg/s",
            "p50 1.2s p99 14s",
            "replicas 30 -> 42",
            " queue ",
            " replicas ",
            " nodes ",
            " cost rate $/h ",
            " cost so far $ ",
            " throughput msg/s ",
            " latency s ",
            " nodes by type ",
            "━visible 177 ━in flight 59",
            "logs → kedge-report/1/kedge.log",
            " q  quit",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
        // Sized to its content: one decision, one line (plus borders), not half the screen.
        let rows_with_decisions = text
            .lines()
            .filter(|l| l.contains("latest decisions"))
            .count();
        assert_eq!(rows_with_decisions, 1);
        assert!(
            !text.contains("Tab: more"),
            "all charts fit at 160x45\n{text}"
        );
    }

    #[test]
    fn at_80_by_24_the_figures_stay_whole_and_charts_page() {
        let (snap, samples) = (snap(), samples());
        let v = view(&snap, &samples);
        let mut st = State::new("kedge-report/1/kedge.log".into());
        let text = screen(80, 24, &v, &st);
        for want in [
            "120 visible / 30 in flight",
            "42 desired / 30 running / 12 pending",
            "throughput 23.4 msg/s",
            " queue ",
            "charts 1/4 (Tab: more)",
            "logs → kedge-report/1/kedge.log",
            "replicas 30 -> 42",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
        // Tab shows the next page of charts.
        assert!(!st.key(KeyCode::Tab, KeyModifiers::NONE));
        let next = screen(80, 24, &v, &st);
        assert_ne!(next, text);
        // Hiding the figures and decisions leaves the charts the room.
        st.key(KeyCode::Char('f'), KeyModifiers::NONE);
        st.key(KeyCode::Char('d'), KeyModifiers::NONE);
        let only = screen(80, 24, &v, &st);
        assert!(!only.contains("visible / "), "{only}");
        assert!(!only.contains("latest decisions"), "{only}");
    }

    #[test]
    fn keys_pause_toggle_and_quit() {
        let mut st = State::new(String::new());
        assert!(!st.key(KeyCode::Char('p'), KeyModifiers::NONE));
        assert!(st.paused);
        assert!(!st.key(KeyCode::Char('c'), KeyModifiers::NONE));
        assert!(!st.show_charts);
        assert!(st.key(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert!(st.key(KeyCode::Char('q'), KeyModifiers::NONE));
        assert!(st.key(KeyCode::Esc, KeyModifiers::NONE));
        let (snap, samples) = (snap(), samples());
        let v = view(&snap, &samples);
        let mut st = State::new(String::new());
        st.paused = true;
        assert!(screen(100, 30, &v, &st).contains("PAUSED"));
    }

    #[test]
    fn tiny_terminals_do_not_panic() {
        let (snap, samples) = (snap(), samples());
        let v = view(&snap, &samples);
        let st = State::new("x".into());
        for (w, h) in [(1, 1), (10, 3), (40, 10), (80, 5), (200, 8)] {
            screen(w, h, &v, &st);
        }
    }
}
