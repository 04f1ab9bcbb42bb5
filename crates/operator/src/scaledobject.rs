//! The ScaledObject reconciler: KEDA's job, without an HPA or a metrics adapter.
//!
//! A kube-runtime `Controller` reconciles each `ScaledObject`: it validates the spec with the
//! same checks as `kedge check` (errors go to the `Ready` condition and a Warning event),
//! resolves the scale target through discovery and its trigger authentication, and keeps the
//! object in the one scale loop (`scalers::runner`, the same loop `kedge bench autoscale`
//! measures), which steps the engine's [`engine::ScaleLoop`] on the policy's cadence.
//! [`KubeObject`] is the cluster's side of that loop:
//! - **reads** the target's replica count from the watch cache (`targets.rs`; GET `/scale`
//!   only for kinds without a watch) and, with the `kedge` policy, its pods' busy state;
//! - **carries out** each step: marks the engine's victims with the pod-deletion cost
//!   (`busy.rs`), then writes the count through `/scale`; announces scale-outs on the
//!   [`IntentBoard`] when the policy makes joint decisions; hands the engine's events
//!   (KEDA's reasons) and the status that follows to [`Reports`], which publishes them through
//!   the event recorder and writes the status with server-side apply behind the loops:
//!   `Ready`, `Active`, `Fallback`, `Paused` conditions, `lastActiveTime`,
//!   `originalReplicaCount`, plus kedge's `desiredReplicas`/`lastDecision`.
//!
//! The loops' API calls share [`API_CONCURRENCY`] permits, `/scale` reads and writes ahead of
//! Events and status (`permits.rs`): a decision reaches the target without queueing behind
//! other objects' reports, and a poll never waits for its own.
//!
//! The policy is the operator's `--policy` unless the object's `autoscaling.kedge.dev/policy`
//! annotation names another.
//!
//! Deletion: the `finalizer.keda.sh` finalizer (KEDA's own) stops the loop and, with
//! `advanced.restoreToOriginalReplicaCount`, scales the target back first.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::{EventRecorder, EventType};
use autoscale::{Autoscaler, Decision};
use clock::Timestamp;
use engine::{PolicyName, ScaleLoop, Template, WorkloadKey};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use scalers::runner::{self, Carried, LoopContext, ObjectLoop, Observed, Poll, Runner};
use serde_json::json;
use tokio::sync::watch;

use crate::auth::{self, Refs};
use crate::context::Context;
use crate::crd::{
    self, Condition, GroupVersionKindResource, Kind, ScaledObjectStatus, StatusSummary, status_hash,
};
use crate::nodes::IntentBoard;
use crate::permits::{ApiPermits, Class};
use crate::reports::{KubeWriter, Note, Reports, StatusWrite};
use crate::scale::{KubeTarget, Resources};
use crate::targets::TargetCaches;
use crate::truncate;
use crate::{Error, Result};

/// Concurrent API calls of all scale loops together.
pub const API_CONCURRENCY: usize = 8;

/// KEDA's finalizer name, so objects created under KEDA are handled the same way.
pub const FINALIZER: &str = "finalizer.keda.sh";

/// Names the policy one ScaledObject is scaled by (overrides `kedge operator --policy`).
pub const ANNOTATION_POLICY: &str = "autoscaling.kedge.dev/policy";

/// What the scale loops share: the client, the caches they read, where they publish.
pub struct ScaleIo {
    pub ctx: Context,
    pub recorder: Arc<EventRecorder>,
    /// Where scale-outs are announced for joint decisions (`None`: nodes are not managed).
    pub intents: Option<IntentBoard>,
    pub caches: Arc<TargetCaches>,
    /// Bounds the scale loops' concurrent API calls, `/scale` calls first (see `permits.rs`).
    pub api_permits: ApiPermits,
    /// Events and status, written behind the loops (see `reports.rs`).
    pub reports: Arc<Reports>,
}

impl ScaleIo {
    /// Publish an Event now and wait for it (the reconcile's reports; the loops' go through
    /// [`ScaleIo::reports`]).
    async fn event(&self, so: &ObjectReference, type_: EventType, reason: &str, note: String) {
        // Bounded like every other scale-loop call: 1,000 objects activating at once would
        // otherwise open 1,000 connections for their events.
        let permit = self.api_permits.acquire(Class::Report).await;
        // Boxed after the permit: waiting holds a small future, not the requests'.
        let published = Box::pin(self.recorder.publish(so, type_, reason, "Scale", note)).await;
        drop(permit);
        if let Err(e) = published {
            tracing::debug!(error = %e, reason, "could not publish event");
        }
    }
}

/// Shared state of the ScaledObject controller.
pub struct Shared {
    pub io: Arc<ScaleIo>,
    pub resources: Resources,
    pub autoscale_metrics: Arc<autoscale::metrics::Metrics>,
    /// The policy of objects without the [`ANNOTATION_POLICY`] annotation.
    pub policy: PolicyName,
    pub runner: Runner<KubeObject>,
    /// A hash of what each running loop was configured from (see [`prepare`]).
    fingerprints: Mutex<HashMap<(String, String), u64>>,
    /// The tasks writing [`ScaleIo::reports`] (stopped with this state).
    report_writers: Vec<tokio::task::AbortHandle>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for w in &self.report_writers {
            w.abort();
        }
    }
}

/// Upper bound for one trigger poll.
pub const SCALER_TIMEOUT: Duration = Duration::from_secs(3);

impl Shared {
    /// The controller's state; starts the scale loop's shards on the current runtime. The
    /// target caches start empty (see [`run`], which fills them from watches).
    pub fn new(
        ctx: Context,
        intents: Option<IntentBoard>,
        autoscale_metrics: Arc<autoscale::metrics::Metrics>,
        policy: PolicyName,
    ) -> Arc<Shared> {
        let recorder = Arc::new(EventRecorder::new(
            ctx.client.clone(),
            "kedge",
            &ctx.settings.identity,
        ));
        let api_permits = ApiPermits::new(API_CONCURRENCY);
        let reports = Arc::new(Reports::default());
        // As many writers as permits: reports can use every permit no `/scale` call waits for.
        let report_writers = (0..API_CONCURRENCY)
            .map(|_| {
                let (reports, permits) = (reports.clone(), api_permits.clone());
                let writer = KubeWriter {
                    ctx: ctx.clone(),
                    recorder: recorder.clone(),
                };
                tokio::spawn(async move { reports.write_next(&permits, &writer).await })
                    .abort_handle()
            })
            .collect();
        let runner = Runner::start(
            LoopContext {
                clock: ctx.clock.clone(),
                metrics: autoscale_metrics.clone(),
                scaler_timeout: SCALER_TIMEOUT,
            },
            runner::Options::default(),
        );
        Arc::new(Shared {
            io: Arc::new(ScaleIo {
                ctx,
                recorder,
                intents,
                caches: Arc::new(TargetCaches::new()),
                api_permits,
                reports,
            }),
            resources: Resources::default(),
            autoscale_metrics,
            policy,
            runner,
            fingerprints: Mutex::new(HashMap::new()),
            report_writers,
        })
    }

    fn ctx(&self) -> &Context {
        &self.io.ctx
    }

    /// Number of running scale loops.
    pub fn running(&self) -> usize {
        self.runner.len()
    }

    /// Stop every scale loop (leadership lost or shutdown).
    pub async fn stop_all(&self) {
        self.runner.stop().await;
        self.io.reports.clear().await;
        self.fingerprints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    async fn stop_loop(&self, key: &(String, String)) {
        self.fingerprints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let wkey = WorkloadKey::new(&key.0, &key.1);
        self.runner.remove(&wkey).await;
        // Its reports too: what the reconcile writes next must not be overwritten by them.
        self.io.reports.forget(&wkey).await;
    }
}

use crate::time::rfc3339;

/// The ScaledObject as the model sees it (validated as `kedge check` would).
pub fn parse(so: &crd::ScaledObject) -> Result<model::keda::ScaledObject> {
    crd::to_model(
        &auth::api_version::<crd::ScaledObject>(),
        crd::ScaledObject::KIND,
        &so.metadata,
        &so.spec.value(),
    )
    .map_err(Error::Invalid)
}

/// Set a condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conds: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    let status = if status { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(now.to_string());
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message.into();
        }
        None => conds.push(Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Some(now.to_string()),
        }),
    }
}

/// The status conditions after a decision (KEDA's reasons and messages).
pub fn decision_conditions(conds: &mut Vec<Condition>, d: &Decision, now: &str) {
    let failing: Vec<String> = d
        .triggers
        .iter()
        .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.name)))
        .collect();
    if failing.is_empty() {
        set_condition(
            conds,
            "Ready",
            true,
            "ScaledObjectReady",
            "ScaledObject is defined correctly and is ready for scaling",
            now,
        );
    } else {
        set_condition(
            conds,
            "Ready",
            false,
            "TriggerError",
            &truncate(failing.join("; "), 1000),
            now,
        );
    }
    if d.active {
        set_condition(
            conds,
            "Active",
            true,
            "ScalerActive",
            "Scaling is performed because triggers are active",
            now,
        );
    } else {
        set_condition(
            conds,
            "Active",
            false,
            "ScalerNotActive",
            "Scaling is not performed because triggers are not active",
            now,
        );
    }
    if d.fallback {
        set_condition(
            conds,
            "Fallback",
            true,
            "FallbackExists",
            "At least one trigger is falling back on this scaled object",
            now,
        );
    } else {
        set_condition(
            conds,
            "Fallback",
            false,
            "NoFallbackFound",
            "No fallbacks are active on this scaled object",
            now,
        );
    }
    if d.paused {
        set_condition(
            conds,
            "Paused",
            true,
            "ScaledObjectPaused",
            "ScaledObject is paused",
            now,
        );
    } else {
        set_condition(
            conds,
            "Paused",
            false,
            "ScaledObjectUnpaused",
            "ScaledObject is not paused",
            now,
        );
    }
}

pub(crate) async fn patch_status(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &ScaledObjectStatus,
) -> Result<()> {
    let api: Api<crd::ScaledObject> = Api::namespaced(ctx.client.clone(), ns);
    let body = json!({
        "apiVersion": auth::api_version::<crd::ScaledObject>(),
        "kind": crd::ScaledObject::KIND,
        "status": status,
    });
    let req = kube::core::Request::new(api.resource_url()).patch_subresource(
        "status",
        name,
        &PatchParams::apply(&ctx.settings.field_manager).force(),
        &Patch::Apply(&body),
    );
    crate::write_discarding(&ctx.client, req)
        .await
        .map_err(Error::kube(format!(
            "writing status of ScaledObject {ns}/{name}"
        )))?;
    Ok(())
}

/// Everything a scale loop needs, resolved from the cluster.
pub struct Prepared {
    config: autoscale::Config,
    policy: engine::Policy,
    scalers: Vec<Arc<dyn autoscale::Scaler>>,
    template: Option<Template>,
    resource: Arc<ApiResource>,
    target_name: String,
}

/// The policy an object is scaled by: its annotation, else the operator's.
fn policy_of(so: &crd::ScaledObject, default: PolicyName) -> Result<engine::Policy> {
    let name = match so.annotations().get(ANNOTATION_POLICY) {
        None => default,
        Some(v) => v.parse::<PolicyName>().map_err(|e| {
            Error::Invalid(format!("metadata.annotations.{ANNOTATION_POLICY}: {e}"))
        })?,
    };
    if name == PolicyName::Oracle {
        return Err(Error::Invalid(format!(
            "metadata.annotations.{ANNOTATION_POLICY}: oracle needs to know future arrivals; only kedge simulate can run it (use kedge or keda-karpenter)"
        )));
    }
    Ok(engine::Policy::preset(name))
}

/// Resolve what the scale loop needs: target, environment, authentication, scalers.
async fn prepare(
    shared: &Shared,
    so: &crd::ScaledObject,
    parsed: &model::keda::ScaledObject,
) -> Result<(Prepared, u64)> {
    let ctx = shared.ctx();
    let ns = so.namespace().unwrap_or_else(|| "default".into());
    let config =
        autoscale::Config::from_scaled_object(parsed).map_err(|e| Error::Invalid(e.to_string()))?;
    let policy = policy_of(so, shared.policy)?;
    let target_ref = &parsed.spec.scale_target_ref;
    let api_version = target_ref.api_version_or_default().to_string();
    let kind = target_ref.kind_or_default().to_string();
    let ar = shared
        .resources
        .resolve(&ctx.client, &api_version, &kind)
        .await?;
    let dyn_api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, ar.as_ref());
    let target_obj = dyn_api
        .get_opt(&target_ref.name)
        .await
        .map_err(Error::kube(format!(
            "reading {kind} {ns}/{}",
            target_ref.name
        )))?
        .ok_or_else(|| {
            Error::Invalid(format!(
                "scaleTargetRef: {kind} {ns}/{} not found",
                target_ref.name
            ))
        })?;
    let mut refs = Refs::new(&ctx.client);
    let env = auth::container_env(
        &mut refs,
        &ns,
        &target_obj,
        target_ref.env_source_container_name.as_deref(),
    )
    .await?;
    let mut auths = Vec::with_capacity(parsed.spec.triggers.len());
    for t in &parsed.spec.triggers {
        auths.push(
            auth::resolve_trigger_auth(
                &mut refs,
                &ns,
                &ctx.settings.own_namespace,
                t.authentication_ref.as_ref(),
                &env,
            )
            .await?,
        );
    }
    // What, if changed, needs a new loop configuration (a hash: the loop table keeps one
    // per object).
    let fingerprint = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        so.metadata.generation.hash(&mut h);
        so.metadata.annotations.hash(&mut h);
        format!("{auths:?}|{env:?}").hash(&mut h);
        target_obj
            .data
            .pointer("/spec/template")
            .map(|t| t.to_string())
            .hash(&mut h);
        shared.policy.hash(&mut h);
        h.finish()
    };
    // `kubernetes-workload` counts any pods of the namespace; `cpu`/`memory` measure the
    // target's own pods (its selector). Only objects with such a trigger get the source.
    let pods = if parsed.spec.triggers.iter().any(|t| {
        matches!(
            t.trigger_type.as_str(),
            "kubernetes-workload" | "cpu" | "memory"
        )
    }) {
        let selector = target_selector(ctx, &target_obj, &ar, &ns, &target_ref.name).await?;
        let source: Arc<dyn scalers::pods::PodSource> = Arc::new(crate::pod_source::KubePods::new(
            ctx.client.clone(),
            &ns,
            &selector,
            ctx.pods.as_ref().map(|i| i.store().clone()),
        ));
        Some(source)
    } else {
        None
    };
    let mut scalers: Vec<Arc<dyn autoscale::Scaler>> =
        Vec::with_capacity(parsed.spec.triggers.len());
    for (i, (t, a)) in parsed.spec.triggers.iter().zip(&auths).enumerate() {
        let s = scalers::build_scaler_with_pods(
            t,
            a,
            &|n| env.get(n).cloned(),
            &ns,
            &parsed.metadata.name,
            pods.clone(),
        )
        .map_err(|e| Error::Invalid(format!("spec.triggers[{i}] ({}): {e}", t.trigger_type)))?;
        scalers.push(Arc::from(s));
    }
    // The pod template, for replica intents: only when nodes are managed and the policy
    // makes joint decisions.
    let template = if shared.io.intents.is_some() && policy.joint {
        target_obj
            .data
            .pointer("/spec/template")
            .and_then(|t| serde_json::from_value::<model::kube::PodTemplateSpec>(t.clone()).ok())
            .map(|t| {
                let mut meta = t.metadata;
                meta.namespace = Some(ns.clone());
                Template::of(&model::kube::Pod {
                    metadata: meta,
                    spec: t.spec,
                })
            })
    } else {
        None
    };
    Ok((
        Prepared {
            config,
            policy,
            scalers,
            template,
            resource: ar,
            target_name: target_ref.name.clone(),
        },
        fingerprint,
    ))
}

/// The label selector of the scale target's pods, in its string form: the target's
/// `spec.selector` (Deployments, StatefulSets and most custom resources), else what its
/// `/scale` reports in `status.selector` (as the HPA reads it).
async fn target_selector(
    ctx: &Context,
    target: &DynamicObject,
    ar: &ApiResource,
    ns: &str,
    name: &str,
) -> Result<String> {
    if let Some(sel) = target.data.pointer("/spec/selector")
        && let Ok(ls) = serde_json::from_value::<
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
        >(sel.clone())
        && let Some(s) = crate::targets::selector_string(&ls)
        && !s.is_empty()
    {
        return Ok(s);
    }
    let req = kube::core::Request::new(
        Api::<DynamicObject>::namespaced_with(ctx.client.clone(), ns, ar).resource_url(),
    )
    .get_subresource("scale", name)
    .map_err(|e| Error::Kube {
        context: format!("reading /scale of {ns}/{name}"),
        source: kube::Error::BuildRequest(e),
    })?;
    let scale: k8s_openapi::api::autoscaling::v1::Scale = ctx
        .client
        .request(req)
        .await
        .map_err(Error::kube(format!("reading /scale of {ns}/{name}")))?;
    scale
        .status
        .and_then(|s| s.selector)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "scaleTargetRef: {} {ns}/{name} reports no pod selector (spec.selector or /scale status.selector), which the cpu and memory triggers need",
                ar.kind
            ))
        })
}

/// One reconcile of one ScaledObject.
pub async fn reconcile(so: Arc<crd::ScaledObject>, shared: Arc<Shared>) -> Result<Action> {
    let ctx = shared.ctx();
    let ns = so.namespace().unwrap_or_else(|| "default".into());
    let name = so.name_any();
    let key = (ns.clone(), name.clone());
    let api: Api<crd::ScaledObject> = Api::namespaced(ctx.client.clone(), &ns);

    if so.metadata.deletion_timestamp.is_some() {
        shared.stop_loop(&key).await;
        if so.finalizers().iter().any(|f| f == FINALIZER) {
            restore_on_delete(&shared, &so).await;
            remove_finalizer(&api, &so).await?;
        }
        shared.autoscale_metrics.forget(&ns, &name);
        return Ok(Action::await_change());
    }
    if !so.finalizers().iter().any(|f| f == FINALIZER) {
        let mut fins = so.finalizers().to_vec();
        fins.push(FINALIZER.into());
        let patch =
            json!({"metadata": {"finalizers": fins, "resourceVersion": so.resource_version()}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(Error::kube(format!(
                "adding the finalizer to ScaledObject {ns}/{name}"
            )))?;
        // The update triggers another reconcile.
        return Ok(Action::await_change());
    }

    let prepared = match parse(&so) {
        Ok(parsed) => prepare(&shared, &so, &parsed).await,
        Err(e) => Err(e),
    };
    let (prepared, fingerprint) = match prepared {
        Ok(p) => p,
        Err(Error::Invalid(msg)) => {
            tracing::info!(scaled_object = %format!("{ns}/{name}"), problem = %msg, "ScaledObject cannot be scaled");
            shared.stop_loop(&key).await;
            let now = rfc3339(ctx.clock.now());
            // What the cache keeps of the status, with Ready false (the decision fields go:
            // no decisions are made for an object that cannot be scaled).
            let mut status = so
                .status
                .as_ref()
                .map(StatusSummary::status)
                .unwrap_or_default();
            set_condition(
                &mut status.conditions,
                "Ready",
                false,
                "ScaledObjectCheckFailed",
                &truncate(msg.clone(), 1000),
                &now,
            );
            if so.status.as_ref().map(|s| s.hash) != Some(status_hash(&status)) {
                shared
                    .io
                    .event(
                        &so.object_ref(&()),
                        EventType::Warning,
                        "ScaledObjectCheckFailed",
                        msg,
                    )
                    .await;
                patch_status(ctx, &ns, &name, &status).await?;
            }
            // Referenced objects may appear later; re-check now and then.
            return Ok(Action::requeue(Duration::from_secs(30)));
        }
        Err(e) => return Err(e),
    };

    let wkey = WorkloadKey::new(&ns, &name);
    let previous = shared
        .fingerprints
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), fingerprint);
    // A loop that ended (its poll panicked) is started again.
    let running = previous.is_some() && shared.runner.contains(&wkey).await;
    if running && previous == Some(fingerprint) {
        // Nothing changed.
    } else if running {
        let Prepared {
            config,
            policy,
            scalers,
            template,
            resource,
            target_name,
        } = prepared;
        shared.runner.update(&wkey, move |o| {
            o.engine.set_policy(&policy);
            o.engine.update(config, template);
            o.scalers = scalers;
            if o.target.resource != resource || *o.target.target.name != *target_name {
                o.target.target = KubeTarget::new(&resource, &o.engine.key.namespace, &target_name);
                o.target.resource = resource;
            }
        });
    } else {
        let created = so
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| Timestamp::from_millis(t.0.as_millisecond().max(0) as u64))
            .unwrap_or_else(|| ctx.clock.now());
        let triggers: Vec<String> = prepared
            .config
            .triggers
            .iter()
            .map(|t| t.trigger_type.clone())
            .collect();
        let Prepared {
            config,
            policy,
            scalers,
            template,
            resource,
            target_name,
        } = prepared;
        let status = so.status.as_ref();
        // Behind the loops' `/scale` calls, like their own events; the reconcile goes on
        // (queued before the loop's first status).
        shared.io.reports.submit(
            &wkey,
            vec![Note {
                regarding: so.object_ref(&()),
                type_: EventType::Normal,
                reason: "KEDAScalersStarted",
                message: format!("Started scalers watch: {}", triggers.join(", ")),
                at: ctx.clock.now(),
            }],
            None,
        );
        shared.runner.insert(ObjectLoop {
            engine: ScaleLoop::new(
                wkey,
                Autoscaler::new(config, created),
                &policy,
                template,
                ctx.clock.now(),
            ),
            scalers,
            target: KubeObject {
                io: shared.io.clone(),
                uid: so.metadata.uid.as_deref().map(Box::from),
                target: KubeTarget::new(&resource, &ns, &target_name),
                resource,
                written: Arc::new(std::sync::atomic::AtomicU64::new(
                    status.map_or(0, |s| s.hash),
                )),
                status: status.cloned().unwrap_or_default(),
                routine: None,
            },
        });
    }
    // Re-resolve authentication and the target now and then (Secrets can change).
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn restore_on_delete(shared: &Shared, so: &crd::ScaledObject) {
    let Ok(parsed) = parse(so) else { return };
    if !parsed.spec.restore_to_original_replica_count() {
        return;
    }
    let Some(original) = so.status.as_ref().and_then(|s| s.original_replica_count) else {
        return;
    };
    let ns = so.namespace().unwrap_or_else(|| "default".into());
    let t = &parsed.spec.scale_target_ref;
    let client = &shared.ctx().client;
    let Ok(ar) = shared
        .resources
        .resolve(client, t.api_version_or_default(), t.kind_or_default())
        .await
    else {
        return;
    };
    let mut target = KubeTarget::new(&ar, &ns, &t.name);
    if let Err(e) = target.write(client, original.max(0) as u32).await {
        tracing::warn!(error = %e, "restoring the original replica count failed");
    }
}

async fn remove_finalizer(api: &Api<crd::ScaledObject>, so: &crd::ScaledObject) -> Result<()> {
    let fins: Vec<String> = so
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"finalizers": fins, "resourceVersion": so.resource_version()}});
    match api
        .patch(
            &so.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if crate::error::kube_status(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::Kube {
            context: format!("removing the finalizer of ScaledObject {}", so.name_any()),
            source: e,
        }),
    }
}

/// `apps/v1.Deployment`, as KEDA writes `status.scaleTargetKind`.
fn kind_label(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        format!("{}.{}", ar.version, ar.kind)
    } else {
        format!("{}/{}.{}", ar.group, ar.version, ar.kind)
    }
}

/// The status a decision leads to.
fn status_after(
    prev: &StatusSummary,
    resource: &ApiResource,
    autoscaler: &Autoscaler,
    d: &Decision,
    now: Timestamp,
) -> ScaledObjectStatus {
    let now_s = rfc3339(now);
    let config = autoscaler.config();
    let mut s = ScaledObjectStatus {
        scale_target_kind: Some(kind_label(resource)),
        scale_target_gvkr: Some(GroupVersionKindResource {
            group: resource.group.clone(),
            version: resource.version.clone(),
            kind: resource.kind.clone(),
            resource: resource.plural.clone(),
        }),
        original_replica_count: prev
            .original_replica_count
            .or(Some(d.current_replicas as i32)),
        last_active_time: match autoscaler.last_active() {
            Some(t) => Some(rfc3339(t)),
            None => prev.last_active_time.as_deref().map(String::from),
        },
        external_metric_names: config
            .triggers
            .iter()
            .enumerate()
            .map(|(i, t)| format!("s{i}-{}", t.trigger_type))
            .collect(),
        paused_replica_count: if d.paused {
            config.pause.paused_replicas
        } else {
            None
        },
        conditions: prev.conditions(),
        desired_replicas: Some(d.desired_replicas as i32),
        last_decision: Some(truncate(d.reason.to_string(), 500)),
    };
    decision_conditions(&mut s.conditions, d, &now_s);
    s
}

/// One ScaledObject's side of the scale loop in the cluster (the engine's [`ScaleLoop`] and
/// the triggers are the loop's own): its target, and what carries from one status to the
/// next. Small on purpose — the operator keeps one per ScaledObject.
pub struct KubeObject {
    io: Arc<ScaleIo>,
    /// The ScaledObject's uid (events refer to it).
    uid: Option<Box<str>>,
    /// The target's kind, shared by every object scaling one of that kind.
    resource: Arc<ApiResource>,
    target: KubeTarget,
    status: StatusSummary,
    /// A hash of the status last written (0: not written yet), noted by [`Reports`] once
    /// it is.
    written: Arc<std::sync::atomic::AtomicU64>,
    /// The last status handed to [`Reports`]: its [`routine_hash`] and when.
    routine: Option<(u64, Timestamp)>,
}

/// A status that differs from the last one handed out only in `lastActiveTime` and
/// `lastDecision` is written at most this often. The scale loop reads a queue every second
/// (`engine::policy::KEDGE_POLL_BACKLOG_AT_MOST`) and every active poll moves
/// `lastActiveTime`: written each time, 1,000 active ScaledObjects would be 1,000 status
/// writes a second, about five times what the API server on a small control plane completes.
/// Conditions, the desired count and the rest go out at the next poll that changes them.
pub const STATUS_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// A hash of the status without the fields every active poll moves.
fn routine_hash(s: &ScaledObjectStatus) -> u64 {
    status_hash(&ScaledObjectStatus {
        last_active_time: None,
        last_decision: None,
        ..s.clone()
    })
}

/// Whether a status unchanged but for its routine fields may wait: the last one handed out
/// had the same [`routine_hash`] and went less than [`STATUS_REFRESH`] ago.
fn status_may_wait(routine: Option<(u64, Timestamp)>, key: u64, now: Timestamp) -> bool {
    routine.is_some_and(|(k, at)| k == key && now >= at && now.since(at) < STATUS_REFRESH)
}

impl KubeObject {
    /// The ScaledObject, for events.
    fn object_ref(&self, key: &WorkloadKey) -> ObjectReference {
        ObjectReference {
            api_version: Some("keda.sh/v1alpha1".into()),
            kind: Some("ScaledObject".into()),
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            uid: self.uid.as_deref().map(String::from),
            ..Default::default()
        }
    }
}

impl runner::Target for KubeObject {
    async fn observe(
        &mut self,
        _key: &WorkloadKey,
        pods: bool,
    ) -> std::result::Result<Observed, String> {
        let io = self.io.clone();
        let read = match self.target.read_cached(&io.caches) {
            Some(r) => r,
            None => {
                // GET /scale, bounded with the other scale-loop calls.
                let permit = io.api_permits.acquire(Class::Scale).await;
                let r = Box::pin(self.target.read_scale(&io.ctx.client)).await;
                drop(permit);
                r
            }
        }
        .map_err(|e| e.to_string())?;
        let pods = match (&read.selector, pods) {
            (Some(s), true) if !s.is_empty() => {
                Some(io.caches.consumers(self.target.namespace(), s).ok_or(
                    "the pod watch has not listed yet (or is listing again after a failure)",
                )?)
            }
            _ => None,
        };
        self.target.selector = read.selector;
        Ok(Observed {
            replicas: read.replicas,
            ready: None,
            pods,
        })
    }

    async fn carry_out(&mut self, lp: &ScaleLoop, poll: Poll) -> Carried {
        // Boxed: a loop waiting for an API permit holds only this (see `future_sizes`).
        Box::pin(self.carry(lp, poll)).await
    }
}

impl KubeObject {
    async fn carry(&mut self, lp: &ScaleLoop, poll: Poll) -> Carried {
        let io = self.io.clone();
        let key = &lp.key;
        let mut carried = Carried::Done;
        if let Some(n) = poll.step.replicas {
            // One permit for the marks (patches, one after another) and the write: 1,000
            // objects scaling in at once would otherwise patch pods 1,000 at a time. Ahead of
            // every report waiting for a permit (`permits.rs`).
            let permit = io.api_permits.acquire(Class::Scale).await;
            // The victims carry their mark before the ReplicaSet sees the lower count; when
            // the count goes to zero every pod goes and nothing needs a mark.
            if lp.marks_victims()
                && n > 0
                && n < poll.observed
                && let Some(selector) = &self.target.selector
                && let Some(pods) = io.caches.consumers(self.target.namespace(), selector)
                && let Err(e) = Box::pin(crate::busy::mark_victims(
                    &io.ctx.client,
                    self.target.namespace(),
                    &pods,
                    &poll.step.victims,
                ))
                .await
            {
                // Best effort: the scale-in still happens, just without the preference.
                tracing::warn!(error = %e, scaled_object = %key, "could not mark the consumers to stop first");
            }
            let written = Box::pin(self.target.write(&io.ctx.client, n)).await;
            drop(permit);
            if let Err(e) = written {
                tracing::warn!(error = %e, scaled_object = %key, desired = n, "scaling the target failed");
                carried = Carried::WriteFailed;
            }
        }
        if carried == Carried::Done
            && poll.step.replicas.is_some()
            && let Some(board) = &io.intents
        {
            // Joint decisions: the scale-out's intent; and every write lets consolidation
            // settle after it (`engine::NodeEngine::note_scale`).
            if let Some(intent) = poll.step.intent {
                board.announce(intent);
            }
            board.note_scale(poll.now);
        }
        // The events and the status are written behind the loops (`reports.rs`): the next
        // poll does not wait for them.
        let events: Vec<Note> = poll
            .events
            .into_iter()
            // A rescale that was not written is not announced.
            .filter(|e| {
                !(carried == Carried::WriteFailed && e.topic == engine::Topic::Scale && !e.warning)
            })
            .map(|e| Note {
                regarding: self.object_ref(key),
                type_: if e.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: e.reason,
                message: e.message,
                at: e.at,
            })
            .collect();
        let status = status_after(
            &self.status,
            &self.resource,
            lp.autoscaler(),
            &poll.step.decision,
            poll.now,
        );
        self.status = StatusSummary::of(&status);
        let hash = self.status.hash;
        // Unchanged since written: not again (a write that failed leaves the old hash, so the
        // next poll's status goes out even if it is the same).
        // The routine hash (a clone of the status) only for a status that would go out.
        let changed = self.written.load(std::sync::atomic::Ordering::Relaxed) != hash;
        let routine = changed
            .then(|| routine_hash(&status))
            .filter(|r| !status_may_wait(self.routine, *r, poll.now));
        let status = routine.map(|routine| {
            self.routine = Some((routine, poll.now));
            StatusWrite {
                status,
                hash,
                written: self.written.clone(),
            }
        });
        io.reports.submit(key, events, status);
        carried
    }
}

/// What a reconcile must react to: generation (spec), annotations (pause), finalizers and
/// deletion. Status writes change none of these.
fn user_intent(so: &crd::ScaledObject) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    so.metadata.generation.hash(&mut h);
    so.metadata.annotations.hash(&mut h);
    so.metadata.finalizers.hash(&mut h);
    so.metadata.deletion_timestamp.is_some().hash(&mut h);
    so.metadata.uid.hash(&mut h);
    Some(h.finish())
}

fn error_policy(_so: Arc<crd::ScaledObject>, err: &Error, _shared: Arc<Shared>) -> Action {
    tracing::warn!(error = %err, "ScaledObject reconcile failed");
    match err.status_code() {
        Some(409) => Action::requeue(Duration::from_millis(200)),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

/// Run the ScaledObject controller until `shutdown`; stops every scale loop on the way out.
pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let ctx = shared.ctx();
    // The scale loops read targets and pods from watches; like controller-runtime, poll
    // only once they have listed (a scale-in must not read "no pods" for "not listed yet").
    let caches = shared.io.caches.start(
        &ctx.client,
        &ctx.settings.namespaces,
        ctx.pods.as_ref(),
        &shutdown,
    );
    {
        let mut sd = shutdown.clone();
        tokio::select! {
            _ = shared.io.caches.synced() => {}
            _ = sd.wait_for(|v| *v) => {}
        }
    }
    let apis: Vec<Api<crd::ScaledObject>> = if ctx.settings.namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        ctx.settings
            .namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect()
    };
    let mut streams = Vec::new();
    for api in apis {
        let s = shared.clone();
        let mut sd = shutdown.clone();
        // Reconcile on what the user changes (spec → generation, pause annotations,
        // finalizers, deletion), not on our own status writes; keep no managedFields in
        // memory.
        let (reader, writer) = kube::runtime::reflector::store();
        let trigger = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(crate::lean::<crd::ScaledObject>)
            .reflect(writer)
            .applied_objects()
            .predicate_filter(user_intent, Default::default());
        let ctrl = Controller::for_stream(trigger, reader)
            // Like KEDA's bounded ScaledObject reconciles: a reconcile makes several API
            // calls, each on its own HTTP/1.1 connection while in flight.
            .with_config(
                kube::runtime::controller::Config::default().concurrency(API_CONCURRENCY as u16),
            )
            .graceful_shutdown_on(async move {
                let _ = sd.wait_for(|v| *v).await;
            })
            .run(reconcile, error_policy, s)
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "ScaledObject controller");
                }
            });
        streams.push(ctrl);
    }
    // Graceful shutdown lets in-flight reconciles finish, but kube's scheduler also holds
    // requeues that may be minutes away: give it a moment, then drop the controller.
    let mut sd = shutdown.clone();
    tokio::select! {
        _ = futures::future::join_all(streams) => {}
        _ = async move {
            let _ = sd.wait_for(|v| *v).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        } => {}
    }
    let _ = shutdown.wait_for(|v| *v).await;
    shared.stop_all().await;
    for c in caches {
        let _ = c.await;
    }
}

/// For `kubectl describe`-style summaries and tests: trigger type → count.
pub fn trigger_types(so: &model::keda::ScaledObject) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in &so.spec.triggers {
        *m.entry(t.trigger_type.clone()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, ApiServer, mock_client};
    use clock::ManualClock;
    use serde_json::Value;

    const SO: &str = "/apis/keda.sh/v1alpha1/namespaces/ns/scaledobjects/so";

    fn shared(client: kube::Client) -> Arc<Shared> {
        let ctx = Context {
            client,
            clock: Arc::new(ManualClock::new(Timestamp::from_secs(1_800_000_000))),
            metrics: Arc::new(crate::server::Metrics::default()),
            settings: Arc::new(crate::context::Settings::default()),
            pods: None,
        };
        Shared::new(
            ctx,
            None,
            Arc::new(autoscale::metrics::Metrics::new()),
            PolicyName::Kedge,
        )
    }

    fn so(finalizers: &[&str], spec: Value, status: Value) -> Arc<crd::ScaledObject> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                "metadata": {"name": "so", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
                             "finalizers": finalizers},
                "spec": spec, "status": status,
            }))
            .unwrap(),
        )
    }

    fn valid_spec() -> Value {
        json!({"scaleTargetRef": {"name": "web"}, "triggers": [
            {"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3"}}]})
    }

    fn apps_v1() -> Value {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
             "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}]})
    }

    async fn expect_event(api: &mut ApiServer, reason: &str) {
        let body = api
            .expect(
                "POST",
                "/apis/events.k8s.io/v1/namespaces/ns/events?",
                201,
                json!({}),
            )
            .await;
        assert_eq!(body["reason"], reason, "{body}");
        assert_eq!(body["regarding"]["name"], "so");
    }

    #[tokio::test]
    async fn adds_the_keda_finalizer_first_and_surfaces_a_conflict() {
        let (client, mut api) = mock_client();
        let s = shared(client);
        let obj = so(&[], valid_spec(), Value::Null);
        let (o2, s2) = (obj.clone(), s.clone());
        let t = tokio::spawn(async move { (reconcile(obj, s).await, reconcile(o2, s2).await) });
        fixtures::timeout(Duration::from_secs(5), async {
            let body = api.expect("PATCH", &format!("{SO}?"), 200, json!({})).await;
            assert_eq!(body["metadata"]["finalizers"], json!([FINALIZER]));
            assert_eq!(body["metadata"]["resourceVersion"], "5");
            api.expect(
                "PATCH",
                &format!("{SO}?"),
                409,
                fixtures::conflict("scaledobjects", "so"),
            )
            .await;
        })
        .await;
        let (first, second) = t.await.unwrap();
        assert_eq!(first.unwrap(), Action::await_change());
        let err = second.unwrap_err();
        assert_eq!(err.status_code(), Some(409));
        // A conflict is retried quickly.
        let obj = so(&[], valid_spec(), Value::Null);
        let (c, _api) = mock_client();
        assert_eq!(
            error_policy(obj, &err, shared(c)),
            Action::requeue(Duration::from_millis(200))
        );
    }

    #[tokio::test]
    async fn an_invalid_spec_is_reported_in_ready_and_an_event_without_touching_the_target() {
        let (client, mut api) = mock_client();
        let s = shared(client);
        let spec = json!({"scaleTargetRef": {"name": "web"}, "maxReplicaCount": 2, "minReplicaCount": 5,
                          "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3"}}]});
        let obj = so(&[FINALIZER], spec, Value::Null);
        let t = tokio::spawn(async move { reconcile(obj, s).await });
        fixtures::timeout(Duration::from_secs(5), async {
            expect_event(&mut api, "ScaledObjectCheckFailed").await;
            let body = api
                .expect(
                    "PATCH",
                    &format!("{SO}/status?&force=true&fieldManager=kedge"),
                    200,
                    json!({}),
                )
                .await;
            let c = &body["status"]["conditions"][0];
            assert_eq!(
                (c["type"].as_str(), c["status"].as_str()),
                (Some("Ready"), Some("False"))
            );
            assert_eq!(c["reason"], "ScaledObjectCheckFailed");
            assert!(
                c["message"].as_str().unwrap().contains("minReplicaCount"),
                "{c}"
            );
        })
        .await;
        assert_eq!(
            t.await.unwrap().unwrap(),
            Action::requeue(Duration::from_secs(30))
        );
        api.expect_no_more(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_missing_target_is_found_through_discovery_and_reported() {
        let (client, mut api) = mock_client();
        let s = shared(client);
        let obj = so(&[FINALIZER], valid_spec(), Value::Null);
        let t = tokio::spawn(async move { reconcile(obj, s).await });
        fixtures::timeout(Duration::from_secs(5), async {
            api.expect("GET", "/apis/apps/v1", 200, apps_v1()).await;
            api.expect(
                "GET",
                "/apis/apps/v1/namespaces/ns/deployments/web",
                404,
                fixtures::not_found("deployments", "web"),
            )
            .await;
            expect_event(&mut api, "ScaledObjectCheckFailed").await;
            let body = api
                .expect(
                    "PATCH",
                    &format!("{SO}/status?&force=true&fieldManager=kedge"),
                    200,
                    json!({}),
                )
                .await;
            let msg = body["status"]["conditions"][0]["message"].as_str().unwrap();
            assert!(msg.contains("Deployment ns/web not found"), "{msg}");
        })
        .await;
        assert_eq!(
            t.await.unwrap().unwrap(),
            Action::requeue(Duration::from_secs(30))
        );
    }

    #[tokio::test]
    async fn a_kind_without_scale_is_refused_by_name() {
        let (client, mut api) = mock_client();
        let s = shared(client);
        let spec = json!({"scaleTargetRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "web"}, "triggers": [
            {"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "3"}}]});
        let obj = so(&[FINALIZER], spec, Value::Null);
        let t = tokio::spawn(async move { reconcile(obj, s).await });
        fixtures::timeout(Duration::from_secs(5), async {
            api.expect("GET", "/api/v1", 200, json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap", "verbs": ["get"]},
                {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}]})).await;
            expect_event(&mut api, "ScaledObjectCheckFailed").await;
            let body = api
                .expect("PATCH", &format!("{SO}/status?&force=true&fieldManager=kedge"), 200, json!({}))
                .await;
            let msg = body["status"]["conditions"][0]["message"].as_str().unwrap();
            assert!(msg.contains("no /scale subresource"), "{msg}");
        })
        .await;
        t.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn deletion_restores_the_original_count_then_drops_the_finalizer_even_if_gone() {
        let (client, mut api) = mock_client();
        let s = shared(client);
        let mut spec = valid_spec();
        spec["advanced"] = json!({"restoreToOriginalReplicaCount": true});
        let mut obj = (*so(
            &[FINALIZER, "other/finalizer"],
            spec,
            json!({"originalReplicaCount": 4}),
        ))
        .clone();
        obj.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            ));
        let t = tokio::spawn(async move { reconcile(Arc::new(obj), s).await });
        fixtures::timeout(Duration::from_secs(5), async {
            api.expect("GET", "/apis/apps/v1", 200, apps_v1()).await;
            let body = api
                .expect("PATCH", "/apis/apps/v1/namespaces/ns/deployments/web/scale?", 200,
                        json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 4}}))
                .await;
            assert_eq!(body, json!({"spec": {"replicas": 4}}));
            let body = api
                .expect("PATCH", &format!("{SO}?"), 404, fixtures::not_found("scaledobjects", "so"))
                .await;
            assert_eq!(body["metadata"]["finalizers"], json!(["other/finalizer"]));
        })
        .await;
        assert_eq!(t.await.unwrap().unwrap(), Action::await_change());
        api.expect_no_more(Duration::from_millis(50)).await;
    }

    /// An active scale-out from 1 to 3, nothing failing, paused or falling back.
    fn decision() -> Decision {
        Decision {
            desired_replicas: 3,
            current_replicas: 1,
            reason: "r".into(),
            requeue_after: Duration::from_secs(1),
            state: autoscale::State::Active,
            active: true,
            error: false,
            fallback: false,
            paused: false,
            triggers: vec![],
            composite: None,
        }
    }

    #[test]
    fn conditions_follow_the_decision_and_keep_transition_times() {
        let mut d = decision();
        let mut c = Vec::new();
        decision_conditions(&mut c, &d, "t1");
        let get = |c: &Vec<Condition>, t: &str| c.iter().find(|x| x.type_ == t).cloned().unwrap();
        assert_eq!(get(&c, "Active").status, "True");
        assert_eq!(get(&c, "Ready").reason, "ScaledObjectReady");
        assert_eq!(get(&c, "Fallback").reason, "NoFallbackFound");
        assert_eq!(get(&c, "Paused").status, "False");
        d.active = false;
        d.fallback = true;
        d.triggers = vec![autoscale::TriggerReport {
            name: "q".into(),
            trigger_type: "aws-sqs-queue".into(),
            value: None,
            active: false,
            error: Some("no answer".into()),
            failures: 3,
            fallback: true,
        }];
        decision_conditions(&mut c, &d, "t2");
        assert_eq!(get(&c, "Active").status, "False");
        assert_eq!(
            get(&c, "Active").last_transition_time.as_deref(),
            Some("t2")
        );
        assert_eq!(get(&c, "Fallback").reason, "FallbackExists");
        assert_eq!(get(&c, "Ready").status, "False");
        assert!(get(&c, "Ready").message.contains("q: no answer"));
        // Unchanged status keeps its time.
        assert_eq!(
            get(&c, "Paused").last_transition_time.as_deref(),
            Some("t1")
        );
    }

    #[test]
    fn a_status_that_only_moves_last_active_time_waits_for_the_refresh() {
        let t0 = Timestamp::from_secs(1_000);
        let at = |s: u64| t0.add(std::time::Duration::from_secs(s));
        let status = |active: &str, decision: &str, desired: i32| ScaledObjectStatus {
            last_active_time: Some(active.into()),
            last_decision: Some(decision.into()),
            desired_replicas: Some(desired),
            ..Default::default()
        };
        let first = routine_hash(&status("t0", "scale to 5", 5));
        assert_eq!(first, routine_hash(&status("t1", "hold 5", 5)));
        // Nothing handed out yet: it goes.
        assert!(!status_may_wait(None, first, t0));
        let handed = Some((first, t0));
        // The same but for the routine fields: it waits 5 s, then goes.
        assert!(status_may_wait(handed, first, at(1)));
        assert!(status_may_wait(handed, first, at(4)));
        assert!(!status_may_wait(handed, first, at(5)));
        // Anything else (here the desired count) goes at once.
        let other = routine_hash(&status("t1", "scale to 9", 9));
        assert_ne!(other, first);
        assert!(!status_may_wait(handed, other, at(1)));
    }

    #[test]
    fn a_status_summary_keeps_what_carries_over_with_static_texts() {
        let foreign = Condition {
            type_: "Healthy".into(),
            status: "Unknown".into(),
            reason: "Other".into(),
            message: "written by someone else".into(),
            last_transition_time: Some("t0".into()),
        };
        let mut status = ScaledObjectStatus {
            original_replica_count: Some(2),
            last_active_time: Some("t-active".into()),
            conditions: vec![foreign.clone()],
            ..Default::default()
        };
        let d = decision();
        decision_conditions(&mut status.conditions, &d, "t1");
        let memory = StatusSummary::of(&status);
        assert_eq!(memory.original_replica_count, Some(2));
        assert_eq!(memory.last_active_time.as_deref(), Some("t-active"));
        assert_eq!(memory.hash, status_hash(&status));
        // kedge's reasons and messages are static strings, not copies, whatever the decision
        // (only a trigger error's message is the error's own text).
        for (active, fallback, paused) in (0..8).map(|b| (b & 1 == 1, b & 2 == 2, b & 4 == 4)) {
            let mut c = Vec::new();
            decision_conditions(
                &mut c,
                &Decision {
                    active,
                    fallback,
                    paused,
                    ..decision()
                },
                "t",
            );
            set_condition(
                &mut c,
                "Ready",
                false,
                "ScaledObjectCheckFailed",
                "bad",
                "t",
            );
            let summary = StatusSummary::of(&ScaledObjectStatus {
                conditions: c,
                ..Default::default()
            });
            assert_eq!(summary.conditions.len(), 4);
            for r in &summary.conditions {
                let crd::Remembered::Own {
                    kind,
                    reason,
                    message,
                    ..
                } = r
                else {
                    panic!("kedge's own condition kept as foreign");
                };
                assert!(matches!(reason, std::borrow::Cow::Borrowed(_)), "{reason}");
                assert!(
                    *kind == 0 || matches!(message, std::borrow::Cow::Borrowed(_)),
                    "{message}"
                );
            }
        }
        // Rebuilt exactly, in the same order, with the foreign condition whole; the next
        // decision's conditions come out as if the whole status had been kept.
        assert_eq!(memory.conditions(), status.conditions);
        let mut rebuilt = memory.conditions();
        assert_eq!(rebuilt[0], foreign);
        let types: Vec<&str> = rebuilt.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Healthy", "Ready", "Active", "Fallback", "Paused"]);
        let mut kept = status.conditions.clone();
        let mut d2 = d.clone();
        d2.active = false;
        decision_conditions(&mut rebuilt, &d2, "t2");
        decision_conditions(&mut kept, &d2, "t2");
        assert_eq!(rebuilt, kept);
        // The cached object's status: what carries over, the decision's fields dropped.
        let full = ScaledObjectStatus {
            scale_target_kind: Some("apps/v1.Deployment".into()),
            last_decision: Some("3 replicas".into()),
            desired_replicas: Some(3),
            external_metric_names: vec!["s0-cron".into()],
            ..status.clone()
        };
        let cached: StatusSummary =
            serde_json::from_value(serde_json::to_value(&full).unwrap()).unwrap();
        assert_eq!(cached.hash, status_hash(&full));
        let kept = cached.status();
        assert_eq!(kept.scale_target_kind, full.scale_target_kind);
        assert_eq!(kept.conditions, full.conditions);
        assert_eq!(kept.original_replica_count, Some(2));
        assert_eq!((kept.last_decision, kept.desired_replicas), (None, None));
        assert!(kept.external_metric_names.is_empty());
        // "Unknown" (or anything else) is not True: becoming True is a transition.
        let unknown = ScaledObjectStatus {
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "Unknown".into(),
                reason: String::new(),
                message: String::new(),
                last_transition_time: Some("t0".into()),
            }],
            ..Default::default()
        };
        let mut c = StatusSummary::of(&unknown).conditions();
        decision_conditions(&mut c, &d, "t3");
        assert_eq!(c[0].last_transition_time.as_deref(), Some("t3"));
    }
}
#[cfg(test)]
mod future_sizes {
    /// Objects created together poll together: 1,000 loops wait for the 8 API permits at the
    /// same time, each holding the future it waits in. What runs under a permit (a `/scale`
    /// read or write, pod marks, a status write) is boxed after the permit, and a step's
    /// carrying out is boxed as a whole, so what waits is small (unboxed, a poll was ~3.7 KB
    /// per loop, a `/scale` read ~1.2 KB and carrying out a step ~2 KB).
    #[test]
    fn waiting_loops_hold_small_futures() {
        fn size3<A, B, C, F: std::future::Future>(_f: fn(A, B, C) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        fn size5<A, B, C, D, E, F: std::future::Future>(_f: fn(A, B, C, D, E) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        use scalers::runner::Target as _;
        let sizes = [
            ("observe", size3(super::KubeObject::observe)),
            ("carry out", size3(super::KubeObject::carry_out)),
            ("event", size5(super::ScaleIo::event)),
        ];
        for (what, bytes) in sizes {
            assert!(bytes <= 1024, "{what}: {bytes} bytes");
        }
    }
}
