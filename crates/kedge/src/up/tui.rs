//! The live view (ratatui): queue, replicas, nodes by type, cost and the latest decisions.
//! `q`, `Esc` or Ctrl-C end the run early (the terminal is in raw mode, so Ctrl-C arrives as
//! a key, not as SIGINT). Throughput and latency come from the table at the end (report).

use std::io;
use std::time::Duration;

use cluster::local::Snapshot;
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
        self.term.draw(|f| {
            let [top, mid, bottom] = Layout::vertical([
                Constraint::Length(6),
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
        })?;
        Ok(())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
    }
}
