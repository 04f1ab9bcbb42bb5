//! The ScaledJob controller: KEDA's ScaledJob, one Kubernetes Job per unit of work.
//!
//! Every ScaledJob gets one poll loop. Each poll (every `pollingInterval`, and at once when the
//! ScaledJob changes) it reads the triggers' metrics, lists the ScaledJob's Jobs (label
//! `scaledjob.keda.sh/name`) and their pods, asks the engine's poll loop
//! ([`engine::JobLoop`], the one the twin and the simulator run, deciding with
//! [`autoscale::scaledjob::step::step`]) what to do — every decision (how many Jobs, which to
//! delete for a rollout or the history limits, when to poll next) is made there — and carries
//! it out: deletes Jobs, creates Jobs from `jobTargetRef` the way
//! KEDA's executor makes them (`generateName: <name>-`, KEDA's labels and the ScaledJob's own,
//! the `scaledjob.keda.sh/generation` annotation and the ScaledJob's annotations, the ScaledJob
//! as controlling owner, `restartPolicy: OnFailure` when unset), and writes status (`Ready`,
//! `Active`, `Paused` conditions, `lastActiveTime`) and events (`KEDAJobsCreated`,
//! `ScaledJobCheckFailed`, `KEDAScalerFailed`).
//!
//! A deleted ScaledJob's loop stops when the object leaves the watch cache; its Jobs are
//! garbage-collected through their owner reference (KEDA does the same).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use autoscale::scaledjob::step::{
    ANNOTATION_GENERATION, Config, Finished, JobsPlan, LABEL_NAME, ObservedJob, ObservedPod,
};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    PropagationPolicy,
};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::auth::{self, Refs};
use crate::context::Context;
use crate::crd::{self, Condition};
use crate::events::{EventRecorder, EventType};
use crate::{Error, Result};

/// How long a poll waits for one trigger.
const SCALER_TIMEOUT: Duration = Duration::from_secs(10);
/// When a ScaledJob cannot be polled (invalid, its auth missing): look again after this long,
/// or at once when it changes.
const RETRY: Duration = Duration::from_secs(30);

/// Run the ScaledJob controller until `stop`.
pub async fn run(ctx: Context, stop: watch::Receiver<bool>) {
    let apis: Vec<Api<crd::ScaledJob>> = if ctx.settings.namespaces.is_empty() {
        vec![Api::all(ctx.client.clone())]
    } else {
        ctx.settings
            .namespaces
            .iter()
            .map(|ns| Api::namespaced(ctx.client.clone(), ns))
            .collect()
    };
    let recorder = Arc::new(EventRecorder::new(
        ctx.client.clone(),
        "kedge-scaledjob",
        &ctx.settings.identity,
    ));
    let mut tasks = Vec::new();
    for api in apis {
        tasks.push(tokio::spawn(watch_namespace(
            ctx.clone(),
            recorder.clone(),
            api,
            stop.clone(),
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
}

struct LoopHandle {
    wake: Arc<Notify>,
    generation: Option<i64>,
    annotations: u64,
    task: tokio::task::JoinHandle<()>,
}

fn annotations_hash(sj: &crd::ScaledJob) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sj.metadata.annotations.hash(&mut h);
    sj.metadata.labels.hash(&mut h);
    h.finish()
}

/// One watch (all namespaces or one), starting a poll loop per ScaledJob and waking it when the
/// ScaledJob changes.
async fn watch_namespace(
    ctx: Context,
    recorder: Arc<EventRecorder>,
    api: Api<crd::ScaledJob>,
    mut stop: watch::Receiver<bool>,
) {
    let (reader, writer) = kube::runtime::reflector::store();
    let mut events = std::pin::pin!(
        watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(crate::lean::<crd::ScaledJob>)
            .reflect(writer)
    );
    let mut loops: HashMap<ObjectRef<crd::ScaledJob>, LoopHandle> = HashMap::new();
    loop {
        let ev = tokio::select! {
            ev = events.next() => ev,
            _ = stop.wait_for(|v| *v) => break,
        };
        let Some(ev) = ev else { break };
        let sj = match ev {
            Ok(watcher::Event::Apply(sj)) | Ok(watcher::Event::InitApply(sj)) => sj,
            Ok(watcher::Event::Delete(sj)) => {
                if let Some(l) = loops.remove(&ObjectRef::from(&sj)) {
                    l.task.abort();
                }
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "ScaledJob watch");
                continue;
            }
        };
        let key = ObjectRef::from(&sj);
        let (generation, annotations) = (sj.metadata.generation, annotations_hash(&sj));
        match loops.get_mut(&key) {
            Some(l) if !l.task.is_finished() => {
                if l.generation != generation || l.annotations != annotations {
                    l.generation = generation;
                    l.annotations = annotations;
                    l.wake.notify_one();
                }
            }
            _ => {
                let wake = Arc::new(Notify::new());
                let task = tokio::spawn(poll_loop(
                    ctx.clone(),
                    recorder.clone(),
                    reader.clone(),
                    key.clone(),
                    wake.clone(),
                    stop.clone(),
                ));
                loops.insert(
                    key,
                    LoopHandle {
                        wake,
                        generation,
                        annotations,
                        task,
                    },
                );
            }
        }
    }
    for (_, l) in loops {
        l.task.abort();
    }
}

/// What a loop built from one version of its ScaledJob.
struct Built {
    fingerprint: u64,
    /// The engine's poll loop of this ScaledJob (the one the twin and the simulator run).
    job_loop: engine::JobLoop,
    scalers: Vec<Box<dyn autoscale::Scaler>>,
}

async fn poll_loop(
    ctx: Context,
    recorder: Arc<EventRecorder>,
    store: Store<crd::ScaledJob>,
    key: ObjectRef<crd::ScaledJob>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut built: Option<Built> = None;
    loop {
        let Some(sj) = store.get(&key) else { return };
        let wait = match poll(&ctx, &recorder, &sj, &mut built).await {
            Ok(next) => next,
            Err(e) => {
                built = None;
                tracing::warn!(scaledjob = %key, error = %e, "ScaledJob cannot be polled");
                not_ready(&ctx, &recorder, &sj, &e.to_string()).await;
                RETRY
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
    }
}

fn object_ref(sj: &crd::ScaledJob) -> ObjectReference {
    ObjectReference {
        api_version: Some(auth::api_version::<crd::ScaledJob>()),
        kind: Some("ScaledJob".into()),
        name: sj.metadata.name.clone(),
        namespace: sj.metadata.namespace.clone(),
        uid: sj.metadata.uid.clone(),
        ..Default::default()
    }
}

/// Resolve the triggers' authentication and build the scalers, unless the ScaledJob is what
/// they were built from.
async fn build(ctx: &Context, sj: &crd::ScaledJob, built: &mut Option<Built>) -> Result<()> {
    let model_sj: model::keda::scaledjob::ScaledJob = crd::to_model(
        &auth::api_version::<crd::ScaledJob>(),
        "ScaledJob",
        &sj.metadata,
        &sj.spec,
    )
    .map_err(Error::Invalid)?;
    let generation = sj.metadata.generation.unwrap_or(0);
    let fingerprint = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        generation.hash(&mut h);
        annotations_hash(sj).hash(&mut h);
        h.finish()
    };
    if built.as_ref().is_some_and(|b| b.fingerprint == fingerprint) {
        return Ok(());
    }
    let config = Config::from_scaled_job(&model_sj, generation).map_err(Error::Invalid)?;
    let ns = config.namespace.clone();
    // The environment of the Job template's container (`envSourceContainerName`, else the
    // first), as KEDA reads it for `...FromEnv` parameters.
    let template: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": config.name},
        "spec": model_sj.spec.job_target_ref,
    }))
    .map_err(|source| Error::Json {
        context: "spec.jobTargetRef".into(),
        source,
    })?;
    let mut refs = Refs::new(&ctx.client);
    let env = auth::container_env(
        &mut refs,
        &ns,
        &template,
        model_sj.spec.env_source_container_name.as_deref(),
    )
    .await?;
    let mut scalers = Vec::with_capacity(model_sj.spec.triggers.len());
    // `kubernetes-workload` counts any pods; `cpu`/`memory` measure the ScaledJob's own Jobs'
    // pods (KEDA's label is on them).
    let pods: Arc<dyn scalers::pods::PodSource> = Arc::new(crate::pod_source::KubePods::new(
        ctx.client.clone(),
        &ns,
        &format!("{LABEL_NAME}={}", config.name),
        ctx.pods.as_ref().map(|i| i.store().clone()),
    ));
    for (i, t) in model_sj.spec.triggers.iter().enumerate() {
        let a = auth::resolve_trigger_auth(
            &mut refs,
            &ns,
            &ctx.settings.own_namespace,
            t.authentication_ref.as_ref(),
            &env,
        )
        .await?;
        let s = scalers::build_scaler_with_pods(
            t,
            &a,
            &|n| env.get(n).cloned(),
            &ns,
            &config.name,
            Some(pods.clone()),
        )
        .map_err(|e| Error::Invalid(format!("spec.triggers[{i}] ({}): {e}", t.trigger_type)))?;
        scalers.push(s);
    }
    let key = engine::WorkloadKey::new(config.namespace.clone(), config.name.clone());
    *built = Some(Built {
        fingerprint,
        job_loop: engine::JobLoop::new(key, config, ctx.clock.now()),
        scalers,
    });
    Ok(())
}

/// One poll; returns how long until the next.
async fn poll(
    ctx: &Context,
    recorder: &EventRecorder,
    sj: &crd::ScaledJob,
    built: &mut Option<Built>,
) -> Result<Duration> {
    build(ctx, sj, built).await?;
    let Some(b) = built.as_mut() else {
        return Ok(RETRY);
    };
    let now = ctx.clock.now();
    let paused = b.job_loop.config().paused;
    let mut samples = Vec::with_capacity(b.scalers.len());
    if !paused {
        for s in &b.scalers {
            samples.push(
                match tokio::time::timeout(SCALER_TIMEOUT, s.get_metric_and_activity(now)).await {
                    Ok(Ok(m)) => Ok((m.value, m.active)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {}s", SCALER_TIMEOUT.as_secs())),
                },
            );
        }
    }
    let jobs = observe_jobs(ctx, b.job_loop.config()).await?;
    // The engine's loop decides (KEDA's executor) and keeps the cadence; this controller
    // publishes its own events, which count the Jobs the API server actually created.
    let mut events = engine::Recorder::new(Duration::ZERO);
    let plan = b.job_loop.step(
        now,
        &engine::JobInput {
            samples: &samples,
            jobs: &jobs,
        },
        &mut events,
    );
    let cfg = b.job_loop.config();
    tracing::debug!(scaledjob = %cfg.name, namespace = %cfg.namespace, reason = %plan.reason, "ScaledJob poll");
    apply(ctx, recorder, sj, cfg, &plan).await?;
    write_status(ctx, recorder, sj, &plan).await;
    Ok(b.job_loop.due().since(now).max(Duration::from_millis(100)))
}

/// The ScaledJob's Jobs and (for unfinished ones) their pods.
async fn observe_jobs(ctx: &Context, cfg: &Config) -> Result<Vec<ObservedJob>> {
    let selector = format!("{LABEL_NAME}={}", cfg.name);
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &cfg.namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube(format!(
            "listing the Jobs of ScaledJob {}/{}",
            cfg.namespace, cfg.name
        )))?;
    let mut out: Vec<ObservedJob> = jobs.items.iter().map(observe_job).collect();
    if out.iter().any(|j| j.finished == Finished::No) {
        // KEDA puts its label on the pod template too, so one list finds every Job's pods.
        let pods = Api::<Pod>::namespaced(ctx.client.clone(), &cfg.namespace)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Error::kube(format!(
                "listing the pods of ScaledJob {}/{}",
                cfg.namespace, cfg.name
            )))?;
        let mut by_job: BTreeMap<String, Vec<ObservedPod>> = BTreeMap::new();
        for p in &pods.items {
            let owner = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "Job")
                .map(|o| o.name.clone());
            let Some(owner) = owner else { continue };
            let status = p.status.as_ref();
            by_job.entry(owner).or_default().push(ObservedPod {
                phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
                true_conditions: status
                    .and_then(|s| s.conditions.as_ref())
                    .into_iter()
                    .flatten()
                    .filter(|c| c.status == "True")
                    .map(|c| c.type_.clone())
                    .collect(),
            });
        }
        for j in &mut out {
            j.pods = by_job.remove(&j.name).unwrap_or_default();
        }
    }
    Ok(out)
}

fn observe_job(j: &Job) -> ObservedJob {
    let conds = j.status.as_ref().and_then(|s| s.conditions.as_ref());
    let is = |t: &str| {
        conds
            .into_iter()
            .flatten()
            .any(|c| c.type_ == t && c.status == "True")
    };
    let finished = if is("Complete") {
        Finished::Succeeded
    } else if is("Failed") {
        Finished::Failed
    } else {
        Finished::No
    };
    let created = j
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| serde_json::to_value(t).ok())
        .and_then(|v| v.as_str().and_then(crate::time::parse_rfc3339))
        .unwrap_or_default();
    ObservedJob {
        name: j.name_any(),
        created,
        finished,
        generation: j
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_GENERATION))
            .and_then(|g| g.parse().ok()),
        deleting: j.metadata.deletion_timestamp.is_some(),
        pods: Vec::new(),
    }
}

/// A Job from `jobTargetRef`, as KEDA's executor makes it (`generateJobs`).
pub fn job_for(sj: &crd::ScaledJob, generation: i64) -> Result<Value> {
    let name = sj.name_any();
    let mut spec = sj.spec.get("jobTargetRef").cloned().unwrap_or(Value::Null);
    if !spec.is_object() {
        return Err(Error::Invalid(
            "spec.jobTargetRef: must be an object".into(),
        ));
    }
    let template = &mut spec["template"];
    if !template.is_object() {
        return Err(Error::Invalid(
            "spec.jobTargetRef.template: must be an object".into(),
        ));
    }
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    template["metadata"]["labels"][LABEL_NAME] = name.clone().into();
    // A Job may not use the default `Always`; KEDA sets OnFailure when none is given.
    if template["spec"]["restartPolicy"]
        .as_str()
        .is_none_or(str::is_empty)
        && template["spec"].is_object()
    {
        template["spec"]["restartPolicy"] = "OnFailure".into();
    }
    let mut labels = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/version": env!("CARGO_PKG_VERSION"),
        "app.kubernetes.io/part-of": name,
        "app.kubernetes.io/managed-by": "kedge",
        LABEL_NAME: name,
    });
    for (k, v) in sj.metadata.labels.iter().flatten() {
        labels[k] = v.clone().into();
    }
    let mut annotations = json!({ANNOTATION_GENERATION: generation.to_string()});
    for (k, v) in sj.metadata.annotations.iter().flatten() {
        if k != "kubectl.kubernetes.io/last-applied-configuration" {
            annotations[k] = v.clone().into();
        }
    }
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "generateName": format!("{name}-"),
            "namespace": sj.namespace(),
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": auth::api_version::<crd::ScaledJob>(),
                "kind": "ScaledJob",
                "name": name,
                "uid": sj.metadata.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    }))
}

/// Carry out the plan: deletions, then creations.
async fn apply(
    ctx: &Context,
    recorder: &EventRecorder,
    sj: &crd::ScaledJob,
    cfg: &Config,
    plan: &JobsPlan,
) -> Result<()> {
    let jobs = Api::<Job>::namespaced(ctx.client.clone(), &cfg.namespace);
    for d in &plan.delete {
        let dp = DeleteParams {
            propagation_policy: Some(if d.foreground {
                PropagationPolicy::Foreground
            } else {
                PropagationPolicy::Background
            }),
            ..Default::default()
        };
        match jobs.delete(&d.name, &dp).await {
            Ok(_) => {
                tracing::info!(job = %d.name, reason = ?d.reason, "Job deleted");
            }
            Err(e) if crate::error::kube_status(&e) == Some(404) => {}
            Err(e) => {
                return Err(Error::Kube {
                    context: format!("deleting Job {}/{}", cfg.namespace, d.name),
                    source: e,
                });
            }
        }
    }
    if plan.create == 0 {
        return Ok(());
    }
    let body: DynamicObject =
        serde_json::from_value(job_for(sj, cfg.generation)?).map_err(|source| Error::Json {
            context: "the Job made from spec.jobTargetRef".into(),
            source,
        })?;
    let ar = ApiResource::erase::<Job>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &cfg.namespace, &ar);
    let mut created = 0;
    let mut failure = None;
    for _ in 0..plan.create {
        match api.create(&PostParams::default(), &body).await {
            Ok(_) => created += 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if created > 0 {
        tracing::info!(scaledjob = %cfg.name, namespace = %cfg.namespace, created, reason = %plan.reason, "Jobs created");
        let _ = recorder
            .publish(
                &object_ref(sj),
                EventType::Normal,
                "KEDAJobsCreated",
                "Scale",
                format!("Created {created} jobs ({})", plan.reason),
            )
            .await;
    }
    match failure {
        None => Ok(()),
        Some(e) => Err(Error::Kube {
            context: format!(
                "creating a Job for ScaledJob {}/{} ({created} of {} created)",
                cfg.namespace, cfg.name, plan.create
            ),
            source: e,
        }),
    }
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
    }
}

/// Merge `new` conditions into the object's, keeping `lastTransitionTime` when the status did
/// not change; patch the status when anything differs.
async fn patch_conditions(
    ctx: &Context,
    sj: &crd::ScaledJob,
    new: Vec<Condition>,
    extra: serde_json::Map<String, Value>,
) {
    let now = crate::time::rfc3339(ctx.clock.now());
    let old: Vec<Condition> = sj
        .status
        .as_ref()
        .and_then(|s| s.get("conditions"))
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let mut conds = old.clone();
    for mut c in new {
        match conds.iter_mut().find(|o| o.type_ == c.type_) {
            Some(o) => {
                c.last_transition_time = if o.status == c.status {
                    o.last_transition_time.clone()
                } else {
                    Some(now.clone())
                };
                *o = c;
            }
            None => {
                c.last_transition_time = Some(now.clone());
                conds.push(c);
            }
        }
    }
    let unchanged_extra = extra.iter().all(|(k, v)| {
        sj.status
            .as_ref()
            .and_then(|s| s.get(k))
            .is_some_and(|o| o == v)
    });
    if conds == old && unchanged_extra {
        return;
    }
    let mut status = extra;
    status.insert(
        "conditions".into(),
        serde_json::to_value(&conds).unwrap_or_default(),
    );
    let api: Api<crd::ScaledJob> =
        Api::namespaced(ctx.client.clone(), &sj.namespace().unwrap_or_default());
    if let Err(e) = api
        .patch_status(
            &sj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
    {
        tracing::debug!(error = %e, "writing ScaledJob status");
    }
}

/// Status after a poll (KEDA's condition reasons and messages).
async fn write_status(
    ctx: &Context,
    recorder: &EventRecorder,
    sj: &crd::ScaledJob,
    plan: &JobsPlan,
) {
    let mut conds = Vec::new();
    let mut extra = serde_json::Map::new();
    match plan.active {
        None => conds.push(condition(
            "Paused",
            "True",
            "ScaledJobPaused",
            "ScaledJob is paused",
        )),
        Some(active) => {
            conds.push(condition(
                "Paused",
                "False",
                "ScaledJobUnpaused",
                "ScaledJob is not paused",
            ));
            conds.push(if active {
                condition(
                    "Active",
                    "True",
                    "ScalerActive",
                    "Scaling is performed because triggers are active",
                )
            } else {
                condition(
                    "Active",
                    "False",
                    "ScalerNotActive",
                    "Scaling is not performed because triggers are not active",
                )
            });
            if active {
                extra.insert(
                    "lastActiveTime".into(),
                    crate::time::rfc3339(ctx.clock.now()).into(),
                );
            }
        }
    }
    match plan.trigger_error() {
        Some(e) => {
            conds.push(condition(
                "Ready",
                "Unknown",
                "PartialTriggerError",
                &crate::truncate(
                    format!("Some triggers defined in ScaledJob are not working correctly: {e}"),
                    1000,
                ),
            ));
            let _ = recorder
                .publish(
                    &object_ref(sj),
                    EventType::Warning,
                    "KEDAScalerFailed",
                    "Scale",
                    crate::truncate(e, 1000),
                )
                .await;
        }
        None => conds.push(condition(
            "Ready",
            "True",
            "ScaledJobReady",
            "ScaledJob is defined correctly and is ready to scaling",
        )),
    }
    patch_conditions(ctx, sj, conds, extra).await;
}

/// `Ready=False` with the reason a ScaledJob cannot be polled, and a Warning event.
async fn not_ready(ctx: &Context, recorder: &EventRecorder, sj: &crd::ScaledJob, message: &str) {
    let message = crate::truncate(message.to_string(), 1000);
    let _ = recorder
        .publish(
            &object_ref(sj),
            EventType::Warning,
            "ScaledJobCheckFailed",
            "Validate",
            message.clone(),
        )
        .await;
    patch_conditions(
        ctx,
        sj,
        vec![condition(
            "Ready",
            "False",
            "ScaledJobCheckFailed",
            &message,
        )],
        Default::default(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_made_as_keda_makes_them() {
        let sj: crd::ScaledJob = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
            "metadata": {"name": "worker", "namespace": "jobs", "uid": "u-1", "generation": 4,
                         "labels": {"team": "payments"},
                         "annotations": {"note": "x",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"jobTargetRef": {"backoffLimit": 2, "template": {"spec": {
                        "containers": [{"name": "c", "image": "busybox"}]}}},
                     "triggers": []},
        }))
        .unwrap();
        let job = job_for(&sj, 4).unwrap();
        let meta = &job["metadata"];
        assert_eq!(meta["generateName"], "worker-");
        assert_eq!(meta["namespace"], "jobs");
        assert_eq!(meta["labels"][LABEL_NAME], "worker");
        assert_eq!(meta["labels"]["team"], "payments");
        assert_eq!(meta["annotations"][ANNOTATION_GENERATION], "4");
        assert_eq!(meta["annotations"]["note"], "x");
        assert!(
            meta["annotations"]
                .get("kubectl.kubernetes.io/last-applied-configuration")
                .is_none()
        );
        assert_eq!(
            meta["ownerReferences"][0],
            json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "name": "worker",
                   "uid": "u-1", "controller": true, "blockOwnerDeletion": true})
        );
        assert_eq!(job["spec"]["backoffLimit"], 2);
        let t = &job["spec"]["template"];
        assert_eq!(t["metadata"]["labels"][LABEL_NAME], "worker");
        assert_eq!(t["spec"]["restartPolicy"], "OnFailure");

        let bad: crd::ScaledJob = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob",
            "metadata": {"name": "w"}, "spec": {"jobTargetRef": {"template": 3}},
        }))
        .unwrap();
        assert_eq!(
            job_for(&bad, 1).unwrap_err().to_string(),
            "spec.jobTargetRef.template: must be an object"
        );
    }
}
