//! The operator's HTTP endpoint: `/metrics` (Prometheus text: KEDA's metric names from the
//! autoscale core plus the operator's own), `/healthz` (the process runs), `/readyz` (the
//! API server answered and the controllers run — a standby replica is ready too: it is
//! healthy, just not leading).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use tokio::sync::watch;

type Labels = Vec<(&'static str, String)>;
/// One metric family: kind (`counter`/`gauge`), help text, value per label set.
type Family = (&'static str, &'static str, BTreeMap<Labels, f64>);

/// Operator metrics.
#[derive(Default)]
pub struct Metrics {
    /// KEDA-named ScaledObject metrics.
    pub autoscale: Arc<autoscale::metrics::Metrics>,
    leader: AtomicBool,
    ready: AtomicBool,
    series: Mutex<BTreeMap<&'static str, Family>>,
}

impl Metrics {
    pub fn new(autoscale: Arc<autoscale::metrics::Metrics>) -> Self {
        Metrics {
            autoscale,
            ..Default::default()
        }
    }

    pub fn set_leader(&self, v: bool) {
        self.leader.store(v, Ordering::Relaxed);
    }
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
    pub fn set_ready(&self, v: bool) {
        self.ready.store(v, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn update(
        &self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        f: impl FnOnce(&mut f64),
    ) {
        let labels: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let mut g = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let e = g
            .entry(name)
            .or_insert_with(|| (kind, help, BTreeMap::new()));
        f(e.2.entry(labels).or_insert(0.0));
    }

    /// Add one to counter `name` (created on first use with `help`).
    pub fn inc(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)]) {
        self.update(name, "counter", help, labels, |v| *v += 1.0);
    }

    /// Set gauge `name`.
    pub fn set(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        self.update(name, "gauge", help, labels, |v| *v = value);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = self.autoscale.render();
        let _ = writeln!(
            out,
            "# HELP kedge_operator_leader Whether this replica holds the leader Lease (1) or stands by (0).\n# TYPE kedge_operator_leader gauge\nkedge_operator_leader {}",
            u8::from(self.is_leader())
        );
        let g = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (name, (kind, help, series)) in g.iter() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in series {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                if l.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{}}} {v}", l.join(","));
                }
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn respond(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; version=0.0.4")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// Answer one request.
pub fn handle(metrics: &Metrics, path: &str) -> Response<Full<Bytes>> {
    match path {
        "/metrics" => respond(StatusCode::OK, metrics.render()),
        "/healthz" | "/livez" => respond(StatusCode::OK, "ok\n".into()),
        "/readyz" => {
            if metrics.is_ready() {
                respond(StatusCode::OK, "ok\n".into())
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: the Kubernetes API server has not answered yet\n".into(),
                )
            }
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "kedge operator: GET /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Serve until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let m = metrics.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let m = m.clone();
                async move { Ok::<_, Infallible>(handle(&m, req.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_follows_readiness_and_metrics_render_counters() {
        let m = Metrics::default();
        assert_eq!(
            handle(&m, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        m.set_ready(true);
        assert_eq!(handle(&m, "/readyz").status(), StatusCode::OK);
        assert_eq!(handle(&m, "/healthz").status(), StatusCode::OK);
        assert_eq!(handle(&m, "/nope").status(), StatusCode::NOT_FOUND);
        m.inc(
            "kedge_reconcile_total",
            "Reconciles.",
            &[("kind", "ScaledObject")],
        );
        m.inc(
            "kedge_reconcile_total",
            "Reconciles.",
            &[("kind", "ScaledObject")],
        );
        m.set_leader(true);
        let text = m.render();
        assert!(
            text.contains("kedge_reconcile_total{kind=\"ScaledObject\"} 2"),
            "{text}"
        );
        assert!(text.contains("kedge_operator_leader 1"), "{text}");
    }
}
