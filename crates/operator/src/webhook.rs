//! The CRD conversion webhook: `karpenter.sh/v1beta1` NodePools and NodeClaims and
//! `karpenter.k8s.aws/v1beta1` EC2NodeClasses are served beside v1 (stored as v1) and converted
//! by this endpoint, as Karpenter 1.0 did it, so manifests written for Karpenter 0.32–0.37 apply
//! unchanged and every object reads back in either version.
//!
//! - [`review`] answers one `ConversionReview` (`apiextensions.k8s.io/v1`, and the v1beta1 form
//!   some API servers still send) with `model::convert`; it is pure and unit-tested.
//! - [`serve`] is the HTTPS endpoint (`POST /convert`), given a bound listener, a TLS
//!   certificate and a shutdown signal.
//! - [`ensure_certificate`] gets the serving certificate from a Secret in the operator's
//!   namespace, or makes one: a self-signed CA generated at start and a serving certificate for
//!   the webhook Service's DNS names signed by it. Every replica serves the webhook (the API
//!   server reaches any of them through the Service), so they must present the same CA: the
//!   first replica to start creates the Secret and the others read it.
//! - [`ensure_crds`] writes the webhook's address and the CA into the `conversion` of each
//!   converted CRD (the committed CRDs name the chart's default Service and no CA), and
//!   [`start`] keeps it so: re-applying the CRD files does not break conversion for long.
//!
//! Certificates carry rcgen's fixed validity (1975–4096), so nothing here reads the clock;
//! rotating is deleting the Secret and restarting the operator.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{Error, Result};

/// The path the CRDs' `clientConfig` names.
pub const PATH: &str = "/convert";
/// The port the webhook listens on in the pod (the Service maps 443 to it).
pub const DEFAULT_PORT: u16 = 9443;

/// Answer one `ConversionReview` (its JSON body). A malformed review gets a `Failure` result
/// with the reason (the API server then fails the request with that message).
pub fn review(body: &[u8]) -> Value {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return failed("", "apiextensions.k8s.io/v1", format!("not JSON: {e}")),
    };
    let api_version = req
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("apiextensions.k8s.io/v1")
        .to_string();
    let request = &req["request"];
    let uid = request.get("uid").and_then(Value::as_str).unwrap_or("");
    let Some(desired) = request.get("desiredAPIVersion").and_then(Value::as_str) else {
        return failed(
            uid,
            &api_version,
            "request.desiredAPIVersion is missing".into(),
        );
    };
    let objects = request
        .get("objects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut converted = Vec::with_capacity(objects.len());
    for obj in objects {
        match model::convert::convert(obj, desired) {
            Ok(o) => converted.push(o),
            Err(e) => {
                let name = obj["metadata"]["name"].as_str().unwrap_or("?");
                let kind = obj["kind"].as_str().unwrap_or("?");
                return failed(uid, &api_version, format!("{kind} {name}: {e}"));
            }
        }
    }
    json!({
        "apiVersion": api_version,
        "kind": "ConversionReview",
        "response": {
            "uid": uid,
            "convertedObjects": converted,
            "result": {"status": "Success"},
        },
    })
}

fn failed(uid: &str, api_version: &str, message: String) -> Value {
    tracing::warn!(%message, "conversion refused");
    json!({
        "apiVersion": api_version,
        "kind": "ConversionReview",
        "response": {
            "uid": uid,
            "convertedObjects": [],
            "result": {"status": "Failure", "message": message},
        },
    })
}

/// A CA and a serving certificate signed by it, PEM-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Make a CA and a serving certificate for `names` (DNS names, or IP addresses for a
/// webhook reached by URL).
pub fn generate(names: &[String]) -> Result<Certificate> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let bad = |e: rcgen::Error| Error::Invalid(format!("generating the webhook certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(bad)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "kedge webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(bad)?;
    let key = KeyPair::generate().map_err(bad)?;
    let mut leaf = CertificateParams::new(names.to_vec()).map_err(bad)?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(bad)?;
    Ok(Certificate {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Where the API server reaches the webhook, and where its certificate is kept.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTPS endpoint binds (`0.0.0.0:9443` in a pod).
    pub bind: String,
    /// The Service in front of the operator's pods (in `namespace`), port 443.
    pub service: String,
    pub namespace: String,
    /// Instead of the Service: the URL the API server calls (a webhook outside the cluster,
    /// e.g. the tests' API server on loopback). Its host goes into the certificate.
    pub url: Option<String>,
    /// The Secret (in `namespace`) holding the CA and serving certificate.
    pub secret: String,
    /// How often the CRDs' conversion settings are checked again.
    pub recheck: Duration,
}

impl Settings {
    /// The names the serving certificate must carry.
    pub fn names(&self) -> Vec<String> {
        match &self.url {
            Some(url) => {
                let host = url
                    .split("://")
                    .nth(1)
                    .unwrap_or(url)
                    .split(['/', ':'])
                    .next()
                    .unwrap_or("")
                    .to_string();
                vec![host]
            }
            None => vec![
                format!("{}.{}.svc", self.service, self.namespace),
                format!("{}.{}.svc.cluster.local", self.service, self.namespace),
            ],
        }
    }

    /// The CRDs' `conversion` with the CA.
    pub fn conversion(&self, ca_pem: &str) -> Value {
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
        let client_config = match &self.url {
            Some(url) => json!({"url": url, "service": null, "caBundle": ca}),
            None => json!({
                "url": null,
                "service": {
                    "name": self.service,
                    "namespace": self.namespace,
                    "path": PATH,
                    "port": 443,
                },
                "caBundle": ca,
            }),
        };
        json!({
            "strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client_config},
        })
    }
}

const CA_KEY: &str = "ca.crt";
const CERT_KEY: &str = "tls.crt";
const KEY_KEY: &str = "tls.key";
/// The names a Secret's certificate was made for (a changed Service gets a new one).
const NAMES_ANNOTATION: &str = "kedge.dev/webhook-names";

/// The webhook certificate from the Secret, or a new one stored there. Replicas starting
/// together race to create it; the loser reads the winner's.
pub async fn ensure_certificate(client: &kube::Client, s: &Settings) -> Result<Certificate> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &s.namespace);
    let names = s.names().join(",");
    for _ in 0..3 {
        let existing = api.get_opt(&s.secret).await.map_err(Error::kube(format!(
            "reading Secret {}/{}",
            s.namespace, s.secret
        )))?;
        if let Some(secret) = &existing
            && let Some(cert) = from_secret(secret)
            && secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(NAMES_ANNOTATION))
                == Some(&names)
        {
            return Ok(cert);
        }
        let cert = generate(&s.names())?;
        let mut secret: Secret = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": s.secret,
                "namespace": s.namespace,
                "labels": {"app.kubernetes.io/part-of": "kedge"},
                "annotations": {NAMES_ANNOTATION: names},
            },
            "stringData": {CA_KEY: cert.ca_pem, CERT_KEY: cert.cert_pem, KEY_KEY: cert.key_pem},
        }))
        .map_err(|source| Error::Json {
            context: "webhook Secret".into(),
            source,
        })?;
        let written = match existing {
            None => api.create(&PostParams::default(), &secret).await,
            Some(old) => {
                // Replace only the version we read: a replica that got there first wins.
                secret.metadata.resource_version = old.metadata.resource_version;
                api.replace(&s.secret, &PostParams::default(), &secret)
                    .await
            }
        };
        match written {
            Ok(_) => {
                tracing::info!(secret = %s.secret, names = %names, "webhook certificate created");
                return Ok(cert);
            }
            Err(e) if crate::error::kube_status(&e) == Some(409) => continue,
            Err(e) => {
                return Err(Error::Kube {
                    context: format!("writing Secret {}/{}", s.namespace, s.secret),
                    source: e,
                });
            }
        }
    }
    Err(Error::Invalid(format!(
        "Secret {}/{} kept changing while the webhook certificate was written",
        s.namespace, s.secret
    )))
}

fn from_secret(secret: &Secret) -> Option<Certificate> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    Some(Certificate {
        ca_pem: text(CA_KEY)?,
        cert_pem: text(CERT_KEY)?,
        key_pem: text(KEY_KEY)?,
    })
}

/// Point each converted CRD's `conversion` at this webhook with `ca_pem`, patching only those
/// that differ. Returns how many were patched.
pub async fn ensure_crds(client: &kube::Client, s: &Settings, ca_pem: &str) -> Result<usize> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let want = s.conversion(ca_pem);
    let mut patched = 0;
    for name in crate::crd::schema::converted_crds() {
        let crd = api
            .get(&name)
            .await
            .map_err(Error::kube(format!("reading CRD {name}")))?;
        let have = serde_json::to_value(&crd.spec.conversion).unwrap_or(Value::Null);
        if same_conversion(&have, &want) {
            continue;
        }
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"conversion": want}})),
        )
        .await
        .map_err(Error::kube(format!(
            "setting the conversion webhook of CRD {name}"
        )))?;
        patched += 1;
    }
    Ok(patched)
}

/// Does the CRD's `conversion` (as read) already say what `want` (a merge patch) says?
fn same_conversion(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (_, Value::Null) => have.is_null(),
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| same_conversion(h.get(k).unwrap_or(&Value::Null), wv)),
        _ => have == want,
    }
}

/// The TLS settings of the endpoint.
pub fn tls_config(cert: &Certificate) -> Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::Invalid(format!("the webhook certificate's {what}: {e}"))
    };
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| bad("key", &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS versions", &e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| bad("pair", &e))?;
    Ok(Arc::new(config))
}

/// Serve `POST /convert` over TLS until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let svc =
                hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(handle(req).await)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Reviews are small (the API server sends a handful of objects); anything larger is refused.
const MAX_BODY: usize = 8 << 20;

async fn handle(req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Vec<u8>, json: bool| {
        Response::builder()
            .status(status)
            .header(
                "content-type",
                if json {
                    "application/json"
                } else {
                    "text/plain"
                },
            )
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if req.method() != hyper::Method::POST || req.uri().path() != PATH {
        return reply(
            StatusCode::NOT_FOUND,
            format!("kedge conversion webhook: POST {PATH}\n").into_bytes(),
            false,
        );
    }
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let body = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                format!("reading the ConversionReview: {e}\n").into_bytes(),
                false,
            );
        }
    };
    let answer = review(&body);
    reply(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
        true,
    )
}

/// Everything the webhook needs in a running operator: the certificate (from the Secret, or
/// made), the endpoint, and the CRDs' conversion settings kept pointing at it. Returns the
/// bound address once serving.
pub async fn start(
    client: kube::Client,
    s: Settings,
    shutdown: watch::Receiver<bool>,
) -> Result<std::net::SocketAddr> {
    let cert = ensure_certificate(&client, &s).await?;
    let tls = tls_config(&cert)?;
    let listener = tokio::net::TcpListener::bind(&s.bind)
        .await
        .map_err(|e| Error::Invalid(format!("binding {} for the webhook: {e}", s.bind)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Invalid(format!("the webhook's address: {e}")))?;
    tokio::spawn(serve(listener, tls, shutdown.clone()));
    tracing::info!(%addr, "conversion webhook serving");
    // Once before returning, so an operator that reports ready has its CRDs pointing at it;
    // then again every `recheck` (re-applied CRD files carry no CA). A failure is not fatal:
    // the CRDs may be installed after the operator starts.
    let check = |client: kube::Client, s: Settings, ca: String| async move {
        match ensure_crds(&client, &s, &ca).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(crds = n, "conversion webhook set in the CRDs"),
            Err(e) => tracing::warn!(error = %e, "could not set the CRDs' conversion webhook"),
        }
    };
    check(client.clone(), s.clone(), cert.ca_pem.clone()).await;
    let mut stop = shutdown;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(s.recheck) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
            check(client.clone(), s.clone(), cert.ca_pem.clone()).await;
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};

    fn settings() -> Settings {
        Settings {
            bind: "127.0.0.1:0".into(),
            service: "kedge-webhook".into(),
            namespace: "kedge".into(),
            url: None,
            secret: "kedge-webhook-cert".into(),
            recheck: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_review_converts_every_object_and_keeps_the_uid() {
        let body = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "desiredAPIVersion": "karpenter.sh/v1",
                "objects": [{
                    "apiVersion": "karpenter.sh/v1beta1", "kind": "NodePool",
                    "metadata": {"name": "default"},
                    "spec": {"template": {"spec": {"nodeClassRef": {"name": "default"}}},
                             "disruption": {"consolidationPolicy": "WhenUnderutilized"}},
                }],
            },
        });
        let out = review(body.to_string().as_bytes());
        let r = &out["response"];
        assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
        assert_eq!(r["result"]["status"], "Success");
        let np = &r["convertedObjects"][0];
        assert_eq!(np["apiVersion"], "karpenter.sh/v1");
        assert_eq!(np["spec"]["disruption"]["consolidateAfter"], "0s");
        assert_eq!(out["apiVersion"], "apiextensions.k8s.io/v1");
    }

    #[test]
    fn a_review_that_cannot_be_converted_fails_with_the_reason() {
        let body = json!({
            "apiVersion": "apiextensions.k8s.io/v1beta1",
            "request": {"uid": "u", "desiredAPIVersion": "karpenter.sh/v2",
                        "objects": [{"apiVersion": "karpenter.sh/v1", "kind": "NodePool",
                                     "metadata": {"name": "p"}}]},
        });
        let out = review(body.to_string().as_bytes());
        assert_eq!(out["apiVersion"], "apiextensions.k8s.io/v1beta1");
        assert_eq!(out["response"]["result"]["status"], "Failure");
        assert_eq!(
            out["response"]["result"]["message"],
            "NodePool p: cannot convert NodePool from karpenter.sh/v1 to karpenter.sh/v2"
        );
        let out = review(b"{]");
        assert_eq!(out["response"]["result"]["status"], "Failure");
    }

    #[test]
    fn certificate_names_follow_the_service_or_the_url() {
        let mut s = settings();
        assert_eq!(
            s.names(),
            [
                "kedge-webhook.kedge.svc",
                "kedge-webhook.kedge.svc.cluster.local"
            ]
        );
        s.url = Some("https://127.0.0.1:9443/convert".into());
        assert_eq!(s.names(), ["127.0.0.1"]);
        let cert = generate(&s.names()).unwrap();
        assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        tls_config(&cert).unwrap();
    }

    #[tokio::test]
    async fn the_secret_is_created_once_and_crds_are_patched_only_when_they_differ() {
        let (client, mut api) = mock_client();
        let s = settings();
        let task = {
            let (client, s) = (client.clone(), s.clone());
            tokio::spawn(async move {
                let cert = ensure_certificate(&client, &s).await.unwrap();
                let patched = ensure_crds(&client, &s, &cert.ca_pem).await.unwrap();
                (cert, patched)
            })
        };
        fixtures::timeout(Duration::from_secs(10), async {
            api.expect(
                "GET",
                "/api/v1/namespaces/kedge/secrets/kedge-webhook-cert",
                404,
                fixtures::not_found("secrets", "kedge-webhook-cert"),
            )
            .await;
            // Another replica was faster: our create conflicts, and we take its Secret.
            let created = api
                .expect(
                    "POST",
                    "/api/v1/namespaces/kedge/secrets?",
                    409,
                    fixtures::status(409, "AlreadyExists", "secrets \"kedge-webhook-cert\" already exists"),
                )
                .await;
            assert_eq!(created["type"], "kubernetes.io/tls");
            let theirs = generate(&s.names()).unwrap();
            use base64::Engine;
            let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
            api.expect(
                "GET",
                "/api/v1/namespaces/kedge/secrets/kedge-webhook-cert",
                200,
                json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                    "metadata": {"name": "kedge-webhook-cert", "namespace": "kedge",
                                 "annotations": {NAMES_ANNOTATION: s.names().join(",")}},
                    "data": {CA_KEY: b64(&theirs.ca_pem), CERT_KEY: b64(&theirs.cert_pem),
                             KEY_KEY: b64(&theirs.key_pem)},
                }),
            )
            .await;
            // NodePools: stale (no CA) → patched; NodeClaims, EC2NodeClasses: already right → left
            // alone.
            let crd = |conversion: Value| {
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                       "metadata": {"name": "x"},
                       "spec": {"group": "g", "scope": "Cluster", "versions": [],
                                "names": {"kind": "K", "plural": "ks"}, "conversion": conversion}})
            };
            let mut stale = s.conversion(&theirs.ca_pem);
            stale["webhook"]["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("caBundle");
            api.expect(
                "GET",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodepools.karpenter.sh",
                200,
                crd(stale),
            )
            .await;
            let patch = api
                .expect(
                    "PATCH",
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodepools.karpenter.sh?",
                    200,
                    crd(Value::Null),
                )
                .await;
            assert_eq!(patch["spec"]["conversion"], s.conversion(&theirs.ca_pem));
            let mut right = s.conversion(&theirs.ca_pem);
            right["webhook"]["clientConfig"]
                .as_object_mut()
                .unwrap()
                .remove("url");
            api.expect(
                "GET",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/nodeclaims.karpenter.sh",
                200,
                crd(right.clone()),
            )
            .await;
            api.expect(
                "GET",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ec2nodeclasses.karpenter.k8s.aws",
                200,
                crd(right),
            )
            .await;
            let (cert, patched) = task.await.unwrap();
            assert_eq!(cert, theirs);
            assert_eq!(patched, 1);
        })
        .await;
        api.expect_no_more(Duration::from_millis(50)).await;
    }
}
