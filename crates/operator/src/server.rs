//! `/metrics`, `/healthz`, `/readyz`.

/// Operator metrics (Prometheus text).
#[derive(Default)]
pub struct Metrics {}
