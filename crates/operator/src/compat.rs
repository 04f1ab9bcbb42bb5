//! API-version discovery: which `policy` version the API server serves, for
//! PodDisruptionBudgets and the Eviction subresource.
//!
//! `policy/v1` PDBs and Evictions exist from Kubernetes 1.21; `policy/v1beta1` was removed in
//! 1.25. An operator that assumes either breaks on one end of the range, so the served versions
//! are read from discovery (`GET /apis/policy`) once at start and every request built from
//! [`ApiCompat`].
//!
//! kube's `Api::<Pod>::evict` is not used: kube 5 posts a body without `apiVersion`/`kind`
//! and with the delete options under a snake_case key (`delete_options`) the API server
//! ignores, so a grace period would be silently dropped. [`evict`] posts a complete `Eviction`
//! of the served version instead.
//!
//! A 429 from the Eviction API is an answer ("a PodDisruptionBudget forbids this now"), not
//! congestion. kube 5 clients retry 429s by default (`Config::default_retry`: up to 15 times,
//! exponential from 5 ms — minutes in total), which would turn one refused eviction into a
//! stalled drain. Build the client that evicts with [`client_without_retry`]; as a safety net
//! [`evict`] gives up waiting after [`EVICTION_TIMEOUT`] and reports the pod as blocked for now.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroup;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};

use crate::error::kube_status;
use crate::{Error, Result};

/// The served version of the `policy` group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `policy/v1` (Kubernetes ≥ 1.21).
    V1,
    /// `policy/v1beta1` (Kubernetes ≤ 1.24; the only one on ≤ 1.20).
    V1beta1,
}

impl PolicyVersion {
    pub fn version(self) -> &'static str {
        match self {
            PolicyVersion::V1 => "v1",
            PolicyVersion::V1beta1 => "v1beta1",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            PolicyVersion::V1 => "policy/v1",
            PolicyVersion::V1beta1 => "policy/v1beta1",
        }
    }
}

/// What this API server serves, as discovered at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCompat {
    pub policy_version: PolicyVersion,
    /// `gitVersion` from `/version`, e.g. `v1.20.2`.
    pub server_version: String,
}

impl ApiCompat {
    /// The PodDisruptionBudget resource of the served version.
    pub fn pdb_resource(&self) -> ApiResource {
        ApiResource {
            group: "policy".into(),
            version: self.policy_version.version().into(),
            api_version: self.policy_version.api_version().into(),
            kind: "PodDisruptionBudget".into(),
            plural: "poddisruptionbudgets".into(),
        }
    }

    /// The `Eviction` body for `namespace/pod` in the served version.
    pub fn eviction_body(&self, namespace: &str, pod: &str, grace_seconds: Option<i64>) -> Value {
        let mut body = json!({
            "apiVersion": self.policy_version.api_version(),
            "kind": "Eviction",
            "metadata": {"name": pod, "namespace": namespace},
        });
        if let Some(g) = grace_seconds {
            body["deleteOptions"] = json!({"gracePeriodSeconds": g});
        }
        body
    }
}

/// Pick the policy version from the `policy` APIGroup's served versions: v1 when served, else
/// v1beta1; an error when neither is (no PDBs, no Eviction: the operator cannot drain safely).
pub fn choose_policy_version(group: &APIGroup) -> Result<PolicyVersion> {
    let served: Vec<&str> = group.versions.iter().map(|v| v.version.as_str()).collect();
    if served.contains(&"v1") {
        Ok(PolicyVersion::V1)
    } else if served.contains(&"v1beta1") {
        Ok(PolicyVersion::V1beta1)
    } else {
        Err(Error::Invalid(format!(
            "the API server serves neither policy/v1 nor policy/v1beta1 (served: {served:?}); \
             PodDisruptionBudgets and the Eviction API are required to drain nodes"
        )))
    }
}

/// Discover the server version and the served `policy` version.
pub async fn discover(client: &kube::Client) -> Result<ApiCompat> {
    let info = client
        .apiserver_version()
        .await
        .map_err(Error::kube("GET /version"))?;
    let req = http::Request::get("/apis/policy")
        .body(Vec::new())
        .map_err(|e| Error::Invalid(format!("building GET /apis/policy: {e}")))?;
    let group: APIGroup = client
        .request(req)
        .await
        .map_err(Error::kube("discovery GET /apis/policy"))?;
    Ok(ApiCompat {
        policy_version: choose_policy_version(&group)?,
        server_version: info.git_version,
    })
}

/// Every PodDisruptionBudget in the cluster, read in the served version and converted for the
/// provision core. A PDB that does not convert is skipped with a warning: the Eviction API
/// still enforces it, so skipping cannot make a drain unsafe, only a decision optimistic.
pub async fn list_pdbs(
    client: &kube::Client,
    compat: &ApiCompat,
) -> Result<Vec<model::kube::PodDisruptionBudget>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &compat.pdb_resource());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(Error::kube(format!(
            "listing {} poddisruptionbudgets",
            compat.policy_version.api_version()
        )))?;
    let mut out = Vec::with_capacity(list.items.len());
    for obj in list.items {
        let v = serde_json::to_value(&obj).map_err(|source| Error::Json {
            context: "poddisruptionbudget".into(),
            source,
        })?;
        match crate::nodes::convert::pdb(&v) {
            Ok(p) => out.push(p),
            Err(e) => {
                tracing::warn!(error = %e, "skipping a PodDisruptionBudget that does not convert")
            }
        }
    }
    Ok(out)
}

/// How long one eviction request may take before the pod counts as blocked for now (only
/// reached with a client that retries 429s, or an API server in trouble).
pub const EVICTION_TIMEOUT: Duration = Duration::from_secs(5);

/// A client from `config` that does not retry 429/503/504 by itself, so an eviction refused by
/// a PodDisruptionBudget comes back at once and is retried on the drain's own schedule.
pub fn client_without_retry(mut config: kube::Config) -> Result<kube::Client> {
    config.default_retry = false;
    kube::Client::try_from(config).map_err(Error::kube("building a client without 429 retries"))
}

/// What an eviction request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvictOutcome {
    /// Accepted: the pod is being deleted (graceful termination follows).
    Evicted,
    /// Refused with 429 because a PodDisruptionBudget allows no disruption now: retry later,
    /// never force. Carries the API server's message.
    Blocked(String),
    /// The pod does not exist (any more).
    Gone,
}

/// Evict `namespace/pod` through the Eviction API of the served policy version.
/// `grace_seconds` overrides the pod's termination grace period when set.
pub async fn evict(
    client: &kube::Client,
    compat: &ApiCompat,
    namespace: &str,
    pod: &str,
    grace_seconds: Option<i64>,
) -> Result<EvictOutcome> {
    let uri = format!("/api/v1/namespaces/{namespace}/pods/{pod}/eviction");
    let body = serde_json::to_vec(&compat.eviction_body(namespace, pod, grace_seconds)).map_err(
        |source| Error::Json {
            context: format!("eviction of {namespace}/{pod}"),
            source,
        },
    )?;
    let req = http::Request::post(&uri)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| Error::Invalid(format!("building POST {uri}: {e}")))?;
    let answer = match tokio::time::timeout(EVICTION_TIMEOUT, client.request::<Value>(req)).await {
        Ok(a) => a,
        Err(_) => {
            return Ok(EvictOutcome::Blocked(format!(
                "no answer to the eviction within {EVICTION_TIMEOUT:?} (a client retrying 429s, \
                 or a slow API server); retried later"
            )));
        }
    };
    match answer {
        Ok(_) => Ok(EvictOutcome::Evicted),
        Err(e) => match kube_status(&e) {
            Some(429) => Ok(EvictOutcome::Blocked(match &e {
                kube::Error::Api(s) => s.message.clone(),
                _ => e.to_string(),
            })),
            Some(404) => Ok(EvictOutcome::Gone),
            _ => Err(Error::Kube {
                context: format!("evicting pod {namespace}/{pod}"),
                source: e,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fixtures::{mock_client, not_found, pdb_blocked, status, timeout};

    fn version(git: &str) -> Value {
        json!({"major": "1", "minor": "20", "gitVersion": git, "gitCommit": "", "gitTreeState": "",
               "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"})
    }

    fn policy_group(versions: &[&str]) -> Value {
        json!({
            "kind": "APIGroup", "apiVersion": "v1", "name": "policy",
            "versions": versions.iter().map(|v| json!({"groupVersion": format!("policy/{v}"), "version": v})).collect::<Vec<_>>(),
            "preferredVersion": {"groupVersion": format!("policy/{}", versions[0]), "version": versions[0]},
        })
    }

    #[tokio::test]
    async fn discovery_on_a_1_20_server_picks_policy_v1beta1() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move { discover(&client).await });
        timeout(Duration::from_secs(5), async {
            api.expect("GET", "/version", 200, version("v1.20.2")).await;
            api.expect("GET", "/apis/policy", 200, policy_group(&["v1beta1"]))
                .await;
        })
        .await;
        let compat = code.await.unwrap().unwrap();
        assert_eq!(compat.policy_version, PolicyVersion::V1beta1);
        assert_eq!(compat.server_version, "v1.20.2");
        assert_eq!(compat.pdb_resource().api_version, "policy/v1beta1");
    }

    #[tokio::test]
    async fn discovery_on_a_current_server_picks_policy_v1() {
        for served in [&["v1"][..], &["v1", "v1beta1"][..]] {
            let (client, mut api) = mock_client();
            let code = tokio::spawn(async move { discover(&client).await });
            timeout(Duration::from_secs(5), async {
                api.expect("GET", "/version", 200, version("v1.33.1")).await;
                api.expect("GET", "/apis/policy", 200, policy_group(served))
                    .await;
            })
            .await;
            let compat = code.await.unwrap().unwrap();
            assert_eq!(
                compat.policy_version,
                PolicyVersion::V1,
                "served {served:?}"
            );
        }
    }

    #[tokio::test]
    async fn discovery_without_a_policy_group_is_an_error_that_says_so() {
        let (client, mut api) = mock_client();
        let code = tokio::spawn(async move { discover(&client).await });
        timeout(Duration::from_secs(5), async {
            api.expect("GET", "/version", 200, version("v1.20.2")).await;
            api.expect("GET", "/apis/policy", 404, not_found("group", "policy"))
                .await;
        })
        .await;
        let err = code.await.unwrap().unwrap_err();
        assert_eq!(err.status_code(), Some(404));
        assert!(err.to_string().contains("/apis/policy"), "{err}");
        let empty: APIGroup = serde_json::from_value(policy_group(&["v2alpha9"])).unwrap();
        let err = choose_policy_version(&empty).unwrap_err();
        assert!(err.to_string().contains("neither policy/v1"), "{err}");
    }

    fn compat(v: PolicyVersion) -> ApiCompat {
        ApiCompat {
            policy_version: v,
            server_version: "test".into(),
        }
    }

    #[tokio::test]
    async fn eviction_bodies_follow_the_served_version() {
        for (v, api_version) in [
            (PolicyVersion::V1beta1, "policy/v1beta1"),
            (PolicyVersion::V1, "policy/v1"),
        ] {
            let (client, mut api) = mock_client();
            let c = compat(v);
            let code =
                tokio::spawn(async move { evict(&client, &c, "ns", "web-1", Some(30)).await });
            let body = timeout(Duration::from_secs(5), async {
                api.expect(
                    "POST",
                    "/api/v1/namespaces/ns/pods/web-1/eviction",
                    201,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                )
                .await
            })
            .await;
            assert_eq!(
                body,
                json!({
                    "apiVersion": api_version, "kind": "Eviction",
                    "metadata": {"name": "web-1", "namespace": "ns"},
                    "deleteOptions": {"gracePeriodSeconds": 30},
                })
            );
            assert_eq!(code.await.unwrap().unwrap(), EvictOutcome::Evicted);
        }
    }

    #[tokio::test]
    async fn eviction_429_is_blocked_404_is_gone_500_is_an_error() {
        let (client, mut api) = mock_client();
        let c = compat(PolicyVersion::V1beta1);
        let code = tokio::spawn(async move {
            (
                evict(&client, &c, "ns", "a", None).await,
                evict(&client, &c, "ns", "b", None).await,
                evict(&client, &c, "ns", "c", None).await,
            )
        });
        timeout(Duration::from_secs(5), async {
            let body = api
                .expect(
                    "POST",
                    "/api/v1/namespaces/ns/pods/a/eviction",
                    429,
                    pdb_blocked(),
                )
                .await;
            assert!(body.get("deleteOptions").is_none(), "no grace override");
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/b/eviction",
                404,
                not_found("pods", "b"),
            )
            .await;
            api.expect(
                "POST",
                "/api/v1/namespaces/ns/pods/c/eviction",
                500,
                status(
                    500,
                    "InternalError",
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ),
            )
            .await;
        })
        .await;
        let (a, b, c) = code.await.unwrap();
        assert_eq!(
            a.unwrap(),
            EvictOutcome::Blocked(
                "Cannot evict pod as it would violate the pod's disruption budget.".into()
            )
        );
        assert_eq!(b.unwrap(), EvictOutcome::Gone);
        let e = c.unwrap_err();
        assert_eq!(e.status_code(), Some(500));
        assert!(e.to_string().contains("evicting pod ns/c"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_eviction_without_an_answer_is_blocked_for_now_not_awaited_forever() {
        let (client, mut api) = mock_client();
        let c = compat(PolicyVersion::V1);
        let code = tokio::spawn(async move { evict(&client, &c, "ns", "a", None).await });
        // The request is never answered (as when a retrying client keeps re-sending a 429'd
        // eviction); paused time runs the timeout out.
        let out = code.await.unwrap().unwrap();
        match out {
            EvictOutcome::Blocked(why) => {
                assert!(why.contains("no answer to the eviction"), "{why}")
            }
            other => panic!("expected Blocked, got {other:?}"),
        }
        let r = api.next(201, json!({})).await;
        assert_eq!(
            (r.method.as_str(), r.uri.as_str()),
            ("POST", "/api/v1/namespaces/ns/pods/a/eviction")
        );
    }

    #[tokio::test]
    async fn pdbs_are_listed_in_the_served_version_and_converted() {
        let (client, mut api) = mock_client();
        let c = compat(PolicyVersion::V1beta1);
        let code = tokio::spawn(async move { list_pdbs(&client, &c).await });
        timeout(Duration::from_secs(5), async {
            api.expect(
                "GET",
                "/apis/policy/v1beta1/poddisruptionbudgets?",
                200,
                json!({
                    "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudgetList",
                    "metadata": {"resourceVersion": "1"},
                    "items": [{
                        "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
                        "metadata": {"name": "web", "namespace": "ns"},
                        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
                        "status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1,
                                   "expectedPods": 1}
                    }]
                }),
            )
            .await;
        })
        .await;
        let pdbs = code.await.unwrap().unwrap();
        assert_eq!(pdbs.len(), 1);
        assert_eq!(pdbs[0].metadata.name, "web");
        assert_eq!(pdbs[0].metadata.ns(), "ns");
        assert_eq!(
            pdbs[0].spec.min_available,
            Some(model::kube::IntOrString::Int(1))
        );
    }
}
