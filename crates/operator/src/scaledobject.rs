//! The ScaledObject reconciler: KEDA's job, without an HPA or a metrics adapter.
//!
//! A kube-runtime `Controller` reconciles each `ScaledObject`: it validates the spec with the
//! same checks as `kedge check` (errors go to the `Ready` condition and a Warning event),
//! resolves the scale target through discovery and its trigger authentication, and keeps one
//! scale loop per object running. The loop polls the triggers on the object's interval,
//! steps the pure [`autoscale::Autoscaler`], writes replicas through the target's `/scale`
//! subresource, announces scale-outs on the [`IntentBoard`] (joint decisions: the node
//! provisioner plans capacity in the same step) and writes status with server-side apply:
//! `Ready`, `Active`, `Fallback`, `Paused` conditions, `lastActiveTime`,
//! `originalReplicaCount`, plus kedge's `desiredReplicas`/`lastDecision`.
//!
//! Deletion: the `finalizer.keda.sh` finalizer (KEDA's own) stops the loop and, with
//! `advanced.restoreToOriginalReplicaCount`, scales the target back first.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::events::{EventRecorder, EventType};
use autoscale::{Autoscaler, Decision};
use clock::Timestamp;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use scalers::runner::{LoopContext, ObjectLoop, first_of};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::auth::{self, Refs};
use crate::context::Context;
use crate::crd::{
    self, Condition, GroupVersionKindResource, Kind, ScaledObjectStatus, StatusSummary, status_hash,
};
use crate::nodes::IntentBoard;
use crate::scale::{KubeTarget, Resources};
use crate::truncate;
use crate::{Error, Result};

/// Concurrent API calls of all scale loops together.
pub const API_CONCURRENCY: usize = 8;

/// KEDA's finalizer name, so objects created under KEDA are handled the same way.
pub const FINALIZER: &str = "finalizer.keda.sh";

/// Shared state of the ScaledObject controller.
pub struct Shared {
    pub ctx: Context,
    pub resources: Resources,
    pub recorder: EventRecorder,
    /// Where scale-outs are announced for joint decisions (`None`: nodes are not managed).
    pub intents: Option<IntentBoard>,
    pub autoscale_metrics: Arc<autoscale::metrics::Metrics>,
    /// Upper bound for one trigger poll.
    pub scaler_timeout: Duration,
    /// Bounds the scale loops' concurrent API calls (like client-go's QPS/burst limits): it
    /// protects the API server and keeps the HTTP/1.1 connection pool (one TLS connection per
    /// concurrent request) small.
    pub api_permits: Arc<tokio::sync::Semaphore>,
    loops: Mutex<HashMap<(String, String), Running>>,
}

struct Running {
    /// A hash of what the loop was configured from (see [`prepare`]).
    fingerprint: u64,
    control: Arc<LoopControl>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    /// A loop never outlives its entry: dropped without [`Shared::stop_loop`], it still stops.
    fn drop(&mut self) {
        self.control.stop();
    }
}

/// How a reconcile reaches its running scale loop: a new configuration, or stop. One small
/// allocation per loop (two channels were ~1 KB each at 1,000 loops).
#[derive(Default)]
struct LoopControl {
    update: Mutex<Option<Box<Prepared>>>,
    stop: AtomicBool,
    wake: Notify,
}

impl LoopControl {
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }
    fn update(&self, p: Prepared) {
        *self.update.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(p));
        self.wake.notify_one();
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
    fn take_update(&self) -> Option<Box<Prepared>> {
        self.update.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Everything a scale loop needs, resolved from the cluster.
pub struct Prepared {
    config: autoscale::Config,
    scalers: Vec<Box<dyn autoscale::Scaler>>,
    about: TargetInfo,
}

/// What a scale loop keeps of its target, besides the autoscaler's configuration.
struct TargetInfo {
    target: Arc<KubeTarget>,
    /// The target's pod template (namespace set) as JSON, for replica intents; only kept when
    /// nodes are managed, and parsed only when replicas go up.
    template: Option<Box<str>>,
    kind_label: String,
    gvkr: GroupVersionKindResource,
}

impl Shared {
    pub fn new(
        ctx: Context,
        intents: Option<IntentBoard>,
        autoscale_metrics: Arc<autoscale::metrics::Metrics>,
    ) -> Arc<Shared> {
        let recorder = EventRecorder::new(ctx.client.clone(), "kedge", &ctx.settings.identity);
        Arc::new(Shared {
            ctx,
            resources: Resources::default(),
            recorder,
            intents,
            autoscale_metrics,
            scaler_timeout: Duration::from_secs(3),
            api_permits: Arc::new(tokio::sync::Semaphore::new(API_CONCURRENCY)),
            loops: Mutex::new(HashMap::new()),
        })
    }

    /// Number of running scale loops.
    pub fn running(&self) -> usize {
        self.loops.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Stop every scale loop (leadership lost or shutdown).
    pub async fn stop_all(&self) {
        let all: Vec<Running> = self
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, r)| r)
            .collect();
        for mut r in all {
            r.control.stop();
            let _ = (&mut r.handle).await;
        }
    }

    async fn stop_loop(&self, key: &(String, String)) {
        let r = self
            .loops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(mut r) = r {
            r.control.stop();
            let _ = (&mut r.handle).await;
        }
    }

    async fn event(&self, so: &ObjectReference, type_: EventType, reason: &str, note: String) {
        // Bounded like every other scale-loop call: 1,000 objects activating at once would
        // otherwise open 1,000 connections for their events.
        let permit = self.api_permits.acquire().await.ok();
        // Boxed after the permit: waiting holds a small future, not the requests'.
        let published = Box::pin(self.recorder.publish(so, type_, reason, "Scale", note)).await;
        drop(permit);
        if let Err(e) = published {
            tracing::debug!(error = %e, reason, "could not publish event");
        }
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

async fn patch_status(
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

/// Resolve what the scale loop needs: target, environment, authentication, scalers.
async fn prepare(
    shared: &Shared,
    so: &crd::ScaledObject,
    parsed: &model::keda::ScaledObject,
) -> Result<(Prepared, u64)> {
    let ctx = &shared.ctx;
    let ns = so.namespace().unwrap_or_else(|| "default".into());
    let config =
        autoscale::Config::from_scaled_object(parsed).map_err(|e| Error::Invalid(e.to_string()))?;
    let target_ref = &parsed.spec.scale_target_ref;
    let api_version = target_ref.api_version_or_default().to_string();
    let kind = target_ref.kind_or_default().to_string();
    let ar: ApiResource = shared
        .resources
        .resolve(&ctx.client, &api_version, &kind)
        .await?;
    let dyn_api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ar);
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
        h.finish()
    };
    let mut scalers = Vec::with_capacity(parsed.spec.triggers.len());
    for (i, (t, a)) in parsed.spec.triggers.iter().zip(&auths).enumerate() {
        let s = scalers::build_scaler_for(
            t,
            a,
            &|n| env.get(n).cloned(),
            &ns,
            &parsed.metadata.name,
        )
        .map_err(|e| Error::Invalid(format!("spec.triggers[{i}] ({}): {e}", t.trigger_type)))?;
        scalers.push(s);
    }
    let template = if shared.intents.is_some() {
        target_obj
            .data
            .pointer("/spec/template")
            .and_then(|t| serde_json::from_value::<model::kube::PodTemplateSpec>(t.clone()).ok())
            .and_then(|t| {
                let mut meta = t.metadata;
                meta.namespace = Some(ns.clone());
                let pod = model::kube::Pod {
                    metadata: meta,
                    spec: t.spec,
                };
                serde_json::to_string(&pod).ok().map(String::into_boxed_str)
            })
    } else {
        None
    };
    let mut target = KubeTarget::new(
        ctx.client.clone(),
        &ar,
        &ns,
        &target_ref.name,
        &ctx.settings.field_manager,
    );
    target.permits = Some(shared.api_permits.clone());
    let target = Arc::new(target);
    let kind_label = if ar.group.is_empty() {
        format!("{}.{}", ar.version, ar.kind)
    } else {
        format!("{}/{}.{}", ar.group, ar.version, ar.kind)
    };
    let gvkr = GroupVersionKindResource {
        group: ar.group.clone(),
        version: ar.version.clone(),
        kind: ar.kind.clone(),
        resource: ar.plural.clone(),
    };
    Ok((
        Prepared {
            config,
            scalers,
            about: TargetInfo {
                target,
                template,
                kind_label,
                gvkr,
            },
        },
        fingerprint,
    ))
}

/// One reconcile of one ScaledObject.
pub async fn reconcile(so: Arc<crd::ScaledObject>, shared: Arc<Shared>) -> Result<Action> {
    let ctx = &shared.ctx;
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

    let same = shared
        .loops
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .map(|r| r.fingerprint == fingerprint && !r.handle.is_finished());
    match same {
        Some(true) => {}
        Some(false) => {
            let control = {
                let mut loops = shared.loops.lock().unwrap_or_else(|e| e.into_inner());
                loops.get_mut(&key).and_then(|r| {
                    r.fingerprint = fingerprint;
                    (!r.handle.is_finished()).then(|| r.control.clone())
                })
            };
            match control {
                Some(c) => c.update(prepared),
                None => {
                    // The loop ended; start over on the next reconcile.
                    shared.stop_loop(&key).await;
                    return Ok(Action::requeue(Duration::from_secs(1)));
                }
            }
        }
        None => {
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
            let control = Arc::new(LoopControl::default());
            let state = LoopState::new(&so, prepared, created);
            let handle = tokio::spawn(scale_loop(shared.clone(), state, control.clone()));
            shared
                .loops
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    key,
                    Running {
                        fingerprint,
                        control,
                        handle,
                    },
                );
            shared
                .event(
                    &so.object_ref(&()),
                    EventType::Normal,
                    "KEDAScalersStarted",
                    format!("Started scalers watch: {}", triggers.join(", ")),
                )
                .await;
        }
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
    let Ok(ar) = shared
        .resources
        .resolve(
            &shared.ctx.client,
            t.api_version_or_default(),
            t.kind_or_default(),
        )
        .await
    else {
        return;
    };
    let target = KubeTarget::new(
        shared.ctx.client.clone(),
        &ar,
        &ns,
        &t.name,
        &shared.ctx.settings.field_manager,
    );
    if let Err(e) = target.write(original.max(0) as u32).await {
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

/// The status a decision leads to.
fn status_after(
    prev: &StatusSummary,
    about: &TargetInfo,
    autoscaler: &Autoscaler,
    d: &Decision,
    now: Timestamp,
) -> ScaledObjectStatus {
    let now_s = rfc3339(now);
    let config = autoscaler.config();
    let mut s = ScaledObjectStatus {
        scale_target_kind: Some(about.kind_label.clone()),
        scale_target_gvkr: Some(about.gvkr.clone()),
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
        last_decision: Some(truncate(d.reason.clone(), 500)),
    };
    decision_conditions(&mut s.conditions, d, &now_s);
    s
}

/// Everything a scale loop keeps between polls, in one box: the loop's future then holds a
/// pointer instead of a large state machine (the task is allocated once per ScaledObject and
/// lives as long as it).
struct LoopState {
    namespace: String,
    name: String,
    /// The ScaledObject's uid (events refer to it).
    uid: Option<String>,
    about: TargetInfo,
    object: ObjectLoop,
    status: StatusSummary,
    /// A hash of the status last written (`None`: not written yet).
    written: Option<u64>,
}

impl LoopState {
    fn new(so: &crd::ScaledObject, p: Prepared, created: Timestamp) -> Box<LoopState> {
        let status = so.status.as_ref();
        Box::new(LoopState {
            namespace: so.namespace().unwrap_or_else(|| "default".into()),
            name: so.name_any(),
            uid: so.metadata.uid.clone(),
            object: ObjectLoop {
                autoscaler: Autoscaler::new(p.config, created),
                scalers: p.scalers,
                target: p.about.target.clone(),
            },
            about: p.about,
            written: status.map(|s| s.hash),
            status: status.cloned().unwrap_or_default(),
        })
    }

    /// The ScaledObject, for events.
    fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("keda.sh/v1alpha1".into()),
            kind: Some("ScaledObject".into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: self.uid.clone(),
            ..Default::default()
        }
    }
}

/// The event a scaling decision is announced with (KEDA's reasons and messages).
fn scale_event(ns: &str, about: &TargetInfo, d: &Decision) -> (&'static str, String) {
    let (kind, name) = (&about.kind_label, &about.target.name);
    if d.current_replicas == 0 {
        (
            "KEDAScaleTargetActivated",
            format!(
                "Scaled {kind} {ns}/{name} from 0 to {}, triggered by {}",
                d.desired_replicas, d.reason
            ),
        )
    } else if d.desired_replicas == 0 {
        (
            "KEDAScaleTargetDeactivated",
            format!(
                "Deactivated {kind} {ns}/{name} from {} to 0",
                d.current_replicas
            ),
        )
    } else {
        (
            "SuccessfulRescale",
            format!(
                "New size: {} (was {}); reason: {}",
                d.desired_replicas, d.current_replicas, d.reason
            ),
        )
    }
}

async fn scale_loop(shared: Arc<Shared>, mut st: Box<LoopState>, control: Arc<LoopControl>) {
    let mut deadline = tokio::time::Instant::now();
    loop {
        let changes: Vec<autoscale::scaler::BoxFuture<'_, ()>> =
            if st.object.autoscaler.config().event_driven {
                st.object
                    .scalers
                    .iter()
                    .filter_map(|s| s.changed())
                    .collect()
            } else {
                Vec::new()
            };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = first_of(changes) => {}
            _ = control.wake.notified() => {}
        }
        if control.stopped() {
            break;
        }
        if let Some(u) = control.take_update() {
            let Prepared {
                config,
                scalers,
                about,
            } = *u;
            st.object.autoscaler.update_config(config);
            st.object.scalers = scalers;
            st.object.target = about.target.clone();
            st.about = about;
        }
        // The poll and what follows run in a box: the loop's own future (one per
        // ScaledObject, alive as long as it) holds only what waiting needs.
        let interval = Box::pin(poll_and_report(&shared, &mut st)).await;
        deadline = tokio::time::Instant::now() + interval;
    }
}

/// One poll of a scale loop: step, announce, events, status. Returns when to poll next.
async fn poll_and_report(shared: &Shared, st: &mut LoopState) -> Duration {
    let ctx = &shared.ctx;
    let loop_ctx = LoopContext {
        clock: ctx.clock.clone(),
        metrics: shared.autoscale_metrics.clone(),
        scaler_timeout: shared.scaler_timeout,
    };
    // Each step is boxed too: loops that poll together (objects created together) wait
    // together for the API permits, and each waiting loop holds only the step it is in.
    let d = Box::pin(st.object.poll_once(&loop_ctx)).await;
    let now = ctx.clock.now();
    let ns = st.namespace.as_str();
    if d.scales() {
        let (reason, note) = scale_event(ns, &st.about, &d);
        if d.desired_replicas > d.current_replicas
            && let (Some(board), Some(t)) = (&shared.intents, &st.about.template)
            && let Ok(template) = serde_json::from_str::<model::kube::Pod>(t)
        {
            board.announce(provision::plan::ReplicaIntent {
                source: format!("ScaledObject {ns}/{}", st.name),
                template,
                replicas: d.desired_replicas - d.current_replicas,
            });
        }
        Box::pin(shared.event(&st.object_ref(), EventType::Normal, reason, note)).await;
    }
    if d.error {
        let errs: Vec<String> = d
            .triggers
            .iter()
            .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.name)))
            .collect();
        Box::pin(shared.event(
            &st.object_ref(),
            EventType::Warning,
            "KEDAScalerFailed",
            errs.join("; "),
        ))
        .await;
    }
    let status = status_after(&st.status, &st.about, &st.object.autoscaler, &d, now);
    st.status = StatusSummary::of(&status);
    let hash = st.status.hash;
    if st.written != Some(hash) {
        let permit = shared.api_permits.acquire().await.ok();
        let written_now = Box::pin(patch_status(ctx, &st.namespace, &st.name, &status)).await;
        drop(permit);
        match written_now {
            Ok(()) => st.written = Some(hash),
            Err(e) => tracing::warn!(error = %e, "status update failed"),
        }
    }
    d.requeue_after.max(Duration::from_millis(1))
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
    let ctx = &shared.ctx;
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
        };
        Shared::new(ctx, None, Arc::new(autoscale::metrics::Metrics::new()))
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
    /// same time, each holding the future it waits in. Each step is boxed after its permit, so
    /// what waits is small (unboxed, the poll was ~3.7 KB per loop and a `/scale` read ~1.5 KB).
    #[test]
    fn waiting_loops_hold_small_futures() {
        fn size2<A, B, F: std::future::Future>(_f: fn(A, B) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        fn size3<A, B, C, F: std::future::Future>(_f: fn(A, B, C) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        fn size1<A, F: std::future::Future>(_f: fn(A) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        fn size5<A, B, C, D, E, F: std::future::Future>(_f: fn(A, B, C, D, E) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let sizes = [
            ("scale loop", size3(super::scale_loop)),
            ("poll", size2(super::poll_and_report)),
            ("/scale read", size1(crate::scale::KubeTarget::read)),
            ("/scale write", size2(crate::scale::KubeTarget::write)),
            ("event", size5(super::Shared::event)),
        ];
        for (what, bytes) in sizes {
            assert!(bytes <= 1024, "{what}: {bytes} bytes");
        }
    }
}
