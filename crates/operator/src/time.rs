//! Kubernetes time formats for the injected clock's [`Timestamp`]s.

use clock::Timestamp;

/// RFC 3339 with second precision (metav1.Time).
pub fn rfc3339(t: Timestamp) -> String {
    k8s_openapi::jiff::Timestamp::from_second((t.as_millis() / 1000) as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// RFC 3339 with microseconds (metav1.MicroTime).
pub fn rfc3339_micro(t: Timestamp) -> String {
    let s = rfc3339(t);
    match s.strip_suffix('Z') {
        Some(base) => format!("{base}.{:03}000Z", t.as_millis() % 1000),
        None => s,
    }
}

pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let t: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    Some(Timestamp::from_millis(t.as_millisecond().max(0) as u64))
}
