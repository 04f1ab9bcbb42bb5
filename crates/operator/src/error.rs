//! The operator's error type: one enum, `#[source]` fields, a `metric_label()` for failure
//! counters.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A request to the Kubernetes API server failed.
    #[error("kubernetes API: {context}: {source}")]
    Kube {
        context: String,
        #[source]
        source: kube::Error,
    },
    /// A user's object is invalid (bad spec, missing reference); reported in its status and
    /// events, not retried quickly.
    #[error("{0}")]
    Invalid(String),
    /// The cloud provider failed.
    #[error("cloud provider: {0}")]
    Provider(#[from] crate::provider::ProviderError),
    /// A scaler could not be built or failed.
    #[error("scaler: {0}")]
    Scaler(#[from] autoscale::ScalerError),
    /// JSON (de)serialization of an object failed.
    #[error("serialization: {context}: {source}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kube(context: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let context = context.into();
        move |source| Error::Kube { context, source }
    }

    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { .. } => "kube",
            Error::Invalid(_) => "invalid",
            Error::Provider(_) => "provider",
            Error::Scaler(_) => "scaler",
            Error::Json { .. } => "json",
        }
    }

    /// The API server answered with this HTTP status code.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Kube { source, .. } => kube_status(source),
            _ => None,
        }
    }
}

/// The HTTP status of an API error (`404`, `409`, `429`, …), if the server answered.
pub fn kube_status(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}
