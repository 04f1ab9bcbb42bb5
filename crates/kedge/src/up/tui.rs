//! The live view (ratatui): queue, replicas, nodes by type, cost, throughput and latency
//! (recent window, from the table: `up/live.rs`) and the latest decisions. `q`, `Esc` or
//! Ctrl-C end the run early (the terminal is in raw mode, so Ctrl-C arrives as a key, not as
//! SIGINT).

use std::io;
use std::time::Duration;

use cluster::local::Snapshot;
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

pub struct Live {
    term: ratatui::DefaultTerminal,
}

pub struct View<'a> {
    pub title: &'a str,
    pub elapsed_s: f64,
    pub total_s: f64,
    pub visible: u64,
    pub in_flight: u64,
    pub snap: &'a Snapshot,
    pub stats: super::live::LiveStats,
    pub decisions: Vec<String>,
}

impl Live {
    pub fn start() -> io::Result<Live> {
        Ok(Live {
            term: ratatui::try_init()?,
        })
    }

    /// A quit key was pressed since the last call.
    pub fn quit_requested(&self) -> bool {
        while event::poll(Duration::ZERO).unwrap_or(false) {
            if let Ok(Event::Key(k)) = event::read() {
                let ctrl_c =
                    k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || k.code == KeyCode::Char('q') || k.code == KeyCode::Esc {
                    return true;
                }
            }
        }
        false
    }

    pub fn draw(&mut self, v: &View<'_>) -> io::Result<()> {
        self.term.draw(|f| render(f, v))?;
        Ok(())
    }
}

pub fn render(f: &mut Frame<'_>, v: &View<'_>) {
    let [top, mid, bottom] = Layout::vertical([
        Constraint::Length(7),
        Constraint::Length((v.snap.nodes_by_type.len() as u16) + 3),
        Constraint::Min(3),
    ])
    .areas(f.area());
    let s = v.snap;
    let head = vec![
        Line::from(format!(
            "{:.0}s / {:.0}s    queue: {} visible, {} in flight    trigger metric: {}",
            v.elapsed_s,
            v.total_s,
            v.visible,
            v.in_flight,
            s.last_metric.map_or("-".into(), |m| format!("{m:.0}"))
        )),
        Line::from(format!(
            "replicas: {} desired, {} running, {} pending, {} terminating",
            s.desired, s.running, s.pending, s.terminating
        )),
        Line::from(format!(
            "nodes: {} ready, {} launching, {} draining    cost: ${:.3}/h, ${:.4} so far",
            s.nodes_ready, s.nodes_launching, s.nodes_draining, s.cost_per_hour, s.cost_usd
        )),
        Line::from(format!(
            "throughput: {:.1} msg/s    latency p50 / p99: {}    (last {} s, sent -> item written)",
            v.stats.throughput,
            v.stats.latency_text(),
            super::live::WINDOW.as_secs()
        )),
        Line::from("q / Esc / Ctrl-C: stop early (the report is still written)"),
    ];
    f.render_widget(
        Paragraph::new(head).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" kedge up: {} ", v.title)),
        ),
        top,
    );
    let mut nodes = vec![Line::from(format!(
        "{:<14} {:>6} {:>10} {:>9}",
        "type", "ready", "launching", "draining"
    ))];
    for (t, (r, l, d)) in &s.nodes_by_type {
        nodes.push(Line::from(format!("{t:<14} {r:>6} {l:>10} {d:>9}")));
    }
    f.render_widget(
        Paragraph::new(nodes).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" nodes by instance type "),
        ),
        mid,
    );
    let lines: Vec<Line> = v.decisions.iter().map(|d| Line::from(d.as_str())).collect();
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" latest decisions "),
        ),
        bottom,
    );
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;

    #[test]
    fn the_view_shows_every_figure() {
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
        let v = View {
            title: "demo",
            elapsed_s: 61.0,
            total_s: 240.0,
            visible: 120,
            in_flight: 30,
            snap: &snap,
            stats: super::super::live::LiveStats {
                throughput: 23.4,
                p50_ms: Some(1250),
                p99_ms: Some(14_000),
                items: 234,
            },
            decisions: vec!["  60.5s scale     replicas 30 -> 42: metric 130 / target 2".into()],
        };
        let mut term = ratatui::Terminal::new(TestBackend::new(110, 24)).expect("terminal");
        term.draw(|f| render(f, &v)).expect("draw");
        let buf = term.backend().buffer();
        let text: String = (0..buf.area.height)
            .map(|y| {
                let mut l: String = (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect();
                l.push('\n');
                l
            })
            .collect();
        for want in [
            "120 visible, 30 in flight",
            "42 desired, 30 running, 12 pending",
            "4 ready, 2 launching",
            "$1.152/h, $0.0321 so far",
            "throughput: 23.4 msg/s",
            "latency p50 / p99: 1.2s / 14s",
            "m5.2xlarge          2          2",
            "replicas 30 -> 42",
        ] {
            assert!(text.contains(want), "{want:?} missing from\n{text}");
        }
    }
}
