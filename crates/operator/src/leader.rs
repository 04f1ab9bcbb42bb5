//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
//! does it, so two (or more) operator replicas can run and only one acts.
//!
//! - A candidate takes the Lease when it does not exist, when it holds it already, or when
//!   the record has not changed for `lease_duration` *as observed locally* (client-go
//!   compares local observation times, not the timestamps written by another machine, so
//!   clock skew between replicas does not matter).
//! - Every write carries the `resourceVersion` it read; a `409 Conflict` means another
//!   replica won the race.
//! - The leader renews every `retry_period`; if it cannot renew for `renew_deadline` it stops
//!   acting. On a graceful stop it releases the Lease (empty holder) so a standby takes over
//!   at once instead of after `lease_duration`.

use std::sync::Arc;
use std::time::Duration;

use clock::{Clock, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        LeaseSettings {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One candidate.
pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
    clock: Arc<dyn Clock>,
    /// The last record seen (holder, renew time, resourceVersion) and when we saw it change.
    observed: Option<(String, Option<String>, Timestamp)>,
}

fn micro(t: Timestamp) -> Option<MicroTime> {
    k8s_openapi::jiff::Timestamp::from_millisecond(t.as_millis() as i64)
        .ok()
        .map(MicroTime)
}

impl Elector {
    pub fn new(client: kube::Client, settings: LeaseSettings, clock: Arc<dyn Clock>) -> Self {
        Elector {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            clock,
            observed: None,
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    fn spec(&self, now: Timestamp, acquire: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(self.settings.lease_duration.as_secs().max(1) as i32),
            acquire_time: acquire.or_else(|| micro(now)),
            renew_time: micro(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Try to become (or stay) the leader. `Ok(true)`: we hold the Lease now.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let now = self.clock.now();
        let s = &self.settings;
        let current = self
            .api
            .get_opt(&s.name)
            .await
            .map_err(Error::kube(format!(
                "reading Lease {}/{}",
                s.namespace, s.name
            )))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, None, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((s.identity.clone(), None, now));
                    Ok(true)
                }
                Err(e) if crate::error::kube_status(&e) == Some(409) => Ok(false),
                Err(e) => Err(Error::Kube {
                    context: format!("creating Lease {}/{}", s.namespace, s.name),
                    source: e,
                }),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let rv = lease.metadata.resource_version.clone();
        // Track when the record last changed, by our own clock.
        let changed = match &self.observed {
            Some((h, r, _)) => *h != holder || *r != rv,
            None => true,
        };
        if changed {
            self.observed = Some((holder.clone(), rv.clone(), now));
        }
        let observed_at = self.observed.as_ref().map(|o| o.2).unwrap_or(now);
        let duration = spec
            .lease_duration_seconds
            .map(|d| Duration::from_secs(d.max(0) as u64))
            .unwrap_or(s.lease_duration);
        let ours = holder == s.identity;
        let free = holder.is_empty() || now.since(observed_at) >= duration;
        if !ours && !free {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + if ours { 0 } else { 1 };
        let acquire = if ours {
            spec.acquire_time.clone()
        } else {
            None
        };
        lease.spec = Some(self.spec(now, acquire, transitions));
        match self
            .api
            .replace(&s.name, &PostParams::default(), &lease)
            .await
        {
            Ok(l) => {
                self.observed = Some((s.identity.clone(), l.metadata.resource_version, now));
                Ok(true)
            }
            Err(e) if crate::error::kube_status(&e) == Some(409) => Ok(false),
            Err(e) => Err(Error::Kube {
                context: format!("updating Lease {}/{}", s.namespace, s.name),
                source: e,
            }),
        }
    }

    /// Give the Lease up (graceful stop) so a standby takes over at once.
    pub async fn release(&mut self) -> Result<()> {
        let s = &self.settings;
        let Some(mut lease) = self
            .api
            .get_opt(&s.name)
            .await
            .map_err(Error::kube(format!(
                "reading Lease {}/{}",
                s.namespace, s.name
            )))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&s.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(crate::error::kube_status(&e), Some(409) | Some(404)) => Ok(()),
            Err(e) => Err(Error::Kube {
                context: format!("releasing Lease {}/{}", s.namespace, s.name),
                source: e,
            }),
        }
    }
}

/// Run `work` while this replica leads; stop it when leadership is lost and compete again;
/// on `shutdown`, stop it and release the Lease. `leading` mirrors the state (metrics,
/// `/readyz`).
pub async fn run_elected<F, Fut>(
    mut elector: Elector,
    mut shutdown: watch::Receiver<bool>,
    leading: watch::Sender<bool>,
    work: F,
) where
    F: Fn(watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let retry = elector.settings.retry_period;
    let deadline = elector.settings.renew_deadline;
    loop {
        // Campaign.
        loop {
            if *shutdown.borrow() {
                return;
            }
            match elector.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(identity = %elector.settings.identity, "became leader");
        let _ = leading.send(true);
        let (stop_tx, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(work(stop_rx));
        let mut last_renew = tokio::time::Instant::now();
        let graceful = loop {
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break true;
            }
            match elector.try_acquire_or_renew().await {
                Ok(true) => last_renew = tokio::time::Instant::now(),
                Ok(false) => break false,
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the leader Lease");
                    if last_renew.elapsed() > deadline {
                        break false;
                    }
                }
            }
        };
        let _ = stop_tx.send(true);
        let _ = handle.await;
        let _ = leading.send(false);
        if graceful {
            if let Err(e) = elector.release().await {
                tracing::warn!(error = %e, "releasing the leader Lease");
            }
            return;
        }
        tracing::warn!(identity = %elector.settings.identity, "lost leadership");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, mock_client};
    use clock::ManualClock;
    use serde_json::json;

    fn lease(holder: &str, rv: &str) -> serde_json::Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "kedge", "namespace": "kedge", "resourceVersion": rv},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 3}})
    }

    const URI: &str = "/apis/coordination.k8s.io/v1/namespaces/kedge/leases/kedge";

    /// The leader's renewals fail (the API server answers 500): a failure within the renew
    /// deadline changes nothing; once it has not renewed for the deadline (10 s) its work is
    /// stopped and it no longer reports leading, before the lease (15 s) lets a standby in.
    #[tokio::test(start_paused = true)]
    async fn a_leader_that_cannot_renew_stops_its_work_at_the_renew_deadline() {
        let (client, mut api) = mock_client();
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let e = Elector::new(client, LeaseSettings::new("kedge", "kedge", "a"), clock);
        let (_shutdown_tx, shutdown) = watch::channel(false);
        let (leading_tx, mut leading) = watch::channel(false);
        let (stopped_tx, mut stopped) = tokio::sync::mpsc::unbounded_channel();
        let run = tokio::spawn(run_elected(e, shutdown, leading_tx, move |mut stop| {
            let stopped = stopped_tx.clone();
            async move {
                let _ = stop.wait_for(|v| *v).await;
                let _ = stopped.send(tokio::time::Instant::now());
            }
        }));
        let error = || fixtures::status(500, "InternalError", "etcdserver: request timed out");
        fixtures::timeout(Duration::from_secs(120), async {
            api.expect("GET", URI, 404, fixtures::not_found("leases", "kedge"))
                .await;
            api.expect(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/kedge/leases?",
                201,
                lease("a", "1"),
            )
            .await;
            leading.wait_for(|l| *l).await.unwrap();
            // One failed renewal, then a good one: still leading, work still running.
            api.expect("GET", URI, 500, error()).await;
            api.expect("GET", URI, 200, lease("a", "1")).await;
            api.expect("PUT", &format!("{URI}?"), 200, lease("a", "2"))
                .await;
            let last_renewal = tokio::time::Instant::now();
            assert!(*leading.borrow());
            assert!(stopped.try_recv().is_err());
            // From now on every renewal fails.
            let stopped_at = loop {
                api.expect("GET", URI, 500, error()).await;
                if let Ok(t) = stopped.try_recv() {
                    break t;
                }
                tokio::task::yield_now().await;
                if let Ok(t) = stopped.try_recv() {
                    break t;
                }
            };
            let without_renewal = stopped_at - last_renewal;
            assert!(
                without_renewal > Duration::from_secs(10)
                    && without_renewal <= Duration::from_secs(12) + Duration::from_millis(100),
                "stopped {without_renewal:?} after the last renewal"
            );
            leading.wait_for(|l| !*l).await.unwrap();
        })
        .await;
        run.abort();
    }

    #[tokio::test]
    async fn creates_a_missing_lease_and_loses_a_create_race() {
        let (client, mut api) = mock_client();
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let mut e = Elector::new(client, LeaseSettings::new("kedge", "kedge", "a"), clock);
        let t = tokio::spawn(async move {
            let first = e.try_acquire_or_renew().await.unwrap();
            let second = e.try_acquire_or_renew().await.unwrap();
            (first, second)
        });
        fixtures::timeout(Duration::from_secs(5), async {
            api.expect("GET", URI, 404, fixtures::not_found("leases", "kedge"))
                .await;
            let body = api
                .expect(
                    "POST",
                    "/apis/coordination.k8s.io/v1/namespaces/kedge/leases?",
                    201,
                    lease("a", "1"),
                )
                .await;
            assert_eq!(body["spec"]["holderIdentity"], "a");
            assert_eq!(body["spec"]["leaseTransitions"], 0);
            api.expect("GET", URI, 404, fixtures::not_found("leases", "kedge"))
                .await;
            api.expect(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/kedge/leases?",
                409,
                fixtures::conflict("leases", "kedge"),
            )
            .await;
        })
        .await;
        assert_eq!(t.await.unwrap(), (true, false));
    }

    #[tokio::test]
    async fn takes_over_only_after_the_record_is_unchanged_for_the_lease_duration() {
        let (client, mut api) = mock_client();
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let c2 = clock.clone();
        let mut e = Elector::new(client, LeaseSettings::new("kedge", "kedge", "b"), clock);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Each step starts only when the test says so (after it moved the clock).
        let (go, mut go_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let t = tokio::spawn(async move {
            for step in 0..3 {
                go_rx.recv().await.unwrap();
                let r = e.try_acquire_or_renew().await.unwrap();
                tx.send((step, r)).unwrap();
            }
        });
        fixtures::timeout(Duration::from_secs(5), async {
            // Held by "a": observed now.
            go.send(()).unwrap();
            api.expect("GET", URI, 200, lease("a", "7")).await;
            assert_eq!(rx.recv().await.unwrap(), (0, false));
            c2.advance(Duration::from_secs(10));
            go.send(()).unwrap();
            // Unchanged for 10 s < 15 s: still a's.
            api.expect("GET", URI, 200, lease("a", "7")).await;
            assert_eq!(rx.recv().await.unwrap(), (1, false));
            c2.advance(Duration::from_secs(6));
            go.send(()).unwrap();
            // 16 s unchanged: take it over with the resourceVersion we read; someone else
            // got there first (409) → not leader.
            api.expect("GET", URI, 200, lease("a", "7")).await;
            let body = api
                .expect(
                    "PUT",
                    &format!("{URI}?"),
                    409,
                    fixtures::conflict("leases", "kedge"),
                )
                .await;
            assert_eq!(body["spec"]["holderIdentity"], "b");
            assert_eq!(body["metadata"]["resourceVersion"], "7");
            assert_eq!(body["spec"]["leaseTransitions"], 4);
            assert_eq!(rx.recv().await.unwrap(), (2, false));
        })
        .await;
        t.await.unwrap();
        api.expect_no_more(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn release_clears_the_holder_only_when_it_is_ours() {
        let (client, mut api) = mock_client();
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(1_000)));
        let mut e = Elector::new(client, LeaseSettings::new("kedge", "kedge", "a"), clock);
        let t = tokio::spawn(async move {
            e.release().await.unwrap();
            e.release().await.unwrap();
        });
        fixtures::timeout(Duration::from_secs(5), async {
            api.expect("GET", URI, 200, lease("a", "9")).await;
            let body = api
                .expect("PUT", &format!("{URI}?"), 200, lease("", "10"))
                .await;
            assert!(
                body["spec"].get("holderIdentity").is_none()
                    || body["spec"]["holderIdentity"].is_null()
            );
            api.expect("GET", URI, 200, lease("someone-else", "11"))
                .await;
        })
        .await;
        t.await.unwrap();
        api.expect_no_more(Duration::from_millis(50)).await;
    }
}
