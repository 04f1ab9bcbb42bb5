//! Trigger authentication as KEDA resolves it: a trigger's `authenticationRef` names a
//! `TriggerAuthentication` (same namespace) or `ClusterTriggerAuthentication` (its Secrets
//! and ConfigMaps are read from the operator's own namespace); `secretTargetRef` and
//! `configMapTargetRef` read keys of Secrets/ConfigMaps; `env` and every `…FromEnv` trigger
//! parameter read the scale target's container environment (`envSourceContainerName`, else
//! the first container): literal `value`s, `valueFrom.secretKeyRef` /
//! `configMapKeyRef`, and `envFrom` Secrets/ConfigMaps.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::DynamicObject;
use scalers::ResolvedAuth;
use serde_json::Value;

use crate::crd::{self, Kind};
use crate::{Error, Result};

/// A container's environment, resolved to plain values.
pub type Env = BTreeMap<String, String>;

/// Reads Secrets and ConfigMaps, caching them for one reconcile.
pub struct Refs<'a> {
    client: &'a kube::Client,
    secrets: BTreeMap<(String, String), Option<BTreeMap<String, String>>>,
    config_maps: BTreeMap<(String, String), Option<BTreeMap<String, String>>>,
}

impl<'a> Refs<'a> {
    pub fn new(client: &'a kube::Client) -> Self {
        Refs {
            client,
            secrets: BTreeMap::new(),
            config_maps: BTreeMap::new(),
        }
    }

    /// The decoded data of Secret `ns/name`; `None` when it does not exist.
    pub async fn secret(
        &mut self,
        ns: &str,
        name: &str,
    ) -> Result<Option<&BTreeMap<String, String>>> {
        let key = (ns.to_string(), name.to_string());
        if !self.secrets.contains_key(&key) {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
            let got = api
                .get_opt(name)
                .await
                .map_err(Error::kube(format!("reading Secret {ns}/{name}")))?;
            let data = got.map(|s| {
                let mut m = BTreeMap::new();
                for (k, v) in s.data.unwrap_or_default() {
                    m.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                }
                for (k, v) in s.string_data.unwrap_or_default() {
                    m.insert(k, v);
                }
                m
            });
            self.secrets.insert(key.clone(), data);
        }
        Ok(self.secrets.get(&key).and_then(|o| o.as_ref()))
    }

    /// The data of ConfigMap `ns/name`; `None` when it does not exist.
    pub async fn config_map(
        &mut self,
        ns: &str,
        name: &str,
    ) -> Result<Option<&BTreeMap<String, String>>> {
        let key = (ns.to_string(), name.to_string());
        if !self.config_maps.contains_key(&key) {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
            let got = api
                .get_opt(name)
                .await
                .map_err(Error::kube(format!("reading ConfigMap {ns}/{name}")))?;
            self.config_maps
                .insert(key.clone(), got.map(|c| c.data.unwrap_or_default()));
        }
        Ok(self.config_maps.get(&key).and_then(|o| o.as_ref()))
    }
}

/// Resolve the environment of the scale target's container from its pod template
/// (`spec.template.spec.containers`, as Deployments, StatefulSets and most scalable kinds
/// have it). A target without a pod template has an empty environment.
pub async fn container_env(
    refs: &mut Refs<'_>,
    ns: &str,
    target: &DynamicObject,
    container: Option<&str>,
) -> Result<Env> {
    let containers = target
        .data
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let chosen = match container {
        Some(name) => containers
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "scaleTargetRef.envSourceContainerName: the target has no container {name:?}"
                ))
            })?,
        None => match containers.first() {
            Some(c) => c,
            None => return Ok(Env::new()),
        },
    };
    let mut env = Env::new();
    for from in chosen
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let prefix = from.get("prefix").and_then(Value::as_str).unwrap_or("");
        let optional = |r: &Value| r.get("optional").and_then(Value::as_bool).unwrap_or(false);
        if let Some(r) = from.get("secretRef") {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            match refs.secret(ns, name).await? {
                Some(data) => {
                    for (k, v) in data {
                        env.insert(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional(r) => {}
                None => {
                    return Err(Error::Invalid(format!(
                        "envFrom: Secret {ns}/{name} of the scale target's container not found"
                    )));
                }
            }
        }
        if let Some(r) = from.get("configMapRef") {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            match refs.config_map(ns, name).await? {
                Some(data) => {
                    for (k, v) in data {
                        env.insert(format!("{prefix}{k}"), v.clone());
                    }
                }
                None if optional(r) => {}
                None => {
                    return Err(Error::Invalid(format!(
                        "envFrom: ConfigMap {ns}/{name} of the scale target's container not found"
                    )));
                }
            }
        }
    }
    for e in chosen
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        if let Some(v) = e.get("value").and_then(Value::as_str) {
            env.insert(name.to_string(), v.to_string());
            continue;
        }
        let Some(from) = e.get("valueFrom") else {
            env.insert(name.to_string(), String::new());
            continue;
        };
        if let Some(r) = from.get("secretKeyRef") {
            let (sname, key) = key_ref(r);
            if let Some(v) = refs
                .secret(ns, &sname)
                .await?
                .and_then(|d| d.get(&key))
                .cloned()
            {
                env.insert(name.to_string(), v);
            }
        } else if let Some(r) = from.get("configMapKeyRef") {
            let (cname, key) = key_ref(r);
            if let Some(v) = refs
                .config_map(ns, &cname)
                .await?
                .and_then(|d| d.get(&key))
                .cloned()
            {
                env.insert(name.to_string(), v);
            }
        }
        // fieldRef / resourceFieldRef need a running pod; KEDA skips them as well.
    }
    Ok(env)
}

fn key_ref(r: &Value) -> (String, String) {
    (
        r.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        r.get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

/// Resolve one trigger's `authenticationRef` in namespace `ns`. `cluster_ns` is where the
/// Secrets/ConfigMaps of a ClusterTriggerAuthentication live.
pub async fn resolve_trigger_auth(
    refs: &mut Refs<'_>,
    ns: &str,
    cluster_ns: &str,
    auth_ref: Option<&model::keda::AuthenticationRef>,
    env: &Env,
) -> Result<ResolvedAuth> {
    let Some(r) = auth_ref else {
        return Ok(ResolvedAuth::default());
    };
    let cluster = r.kind.as_deref() == Some("ClusterTriggerAuthentication");
    let (spec, secret_ns, what) = if cluster {
        let api: Api<crd::ClusterTriggerAuthentication> = Api::all(refs.client.clone());
        let parsed: model::keda::ClusterTriggerAuthentication =
            load(api, &r.name, r.name.clone()).await?;
        (
            parsed.spec,
            cluster_ns.to_string(),
            "ClusterTriggerAuthentication",
        )
    } else {
        if let Some(k) = r.kind.as_deref()
            && k != "TriggerAuthentication"
        {
            return Err(Error::Invalid(format!(
                "authenticationRef.kind: {k:?} is not TriggerAuthentication or ClusterTriggerAuthentication"
            )));
        }
        let api: Api<crd::TriggerAuthentication> = Api::namespaced(refs.client.clone(), ns);
        let parsed: model::keda::TriggerAuthentication =
            load(api, &r.name, format!("{ns}/{}", r.name)).await?;
        (parsed.spec, ns.to_string(), "TriggerAuthentication")
    };
    // Fetch everything referenced, then resolve synchronously.
    let mut secrets: BTreeMap<(String, String), String> = BTreeMap::new();
    for s in &spec.secret_target_ref {
        if let Some(v) = refs
            .secret(&secret_ns, &s.name)
            .await?
            .and_then(|d| d.get(&s.key))
        {
            secrets.insert((s.name.clone(), s.key.clone()), v.clone());
        }
    }
    let mut cms: BTreeMap<(String, String), String> = BTreeMap::new();
    for s in &spec.config_map_target_ref {
        if let Some(v) = refs
            .config_map(&secret_ns, &s.name)
            .await?
            .and_then(|d| d.get(&s.key))
        {
            cms.insert((s.name.clone(), s.key.clone()), v.clone());
        }
    }
    ResolvedAuth::resolve(
        &spec,
        &|n, k| secrets.get(&(n.to_string(), k.to_string())).cloned(),
        &|n, k| cms.get(&(n.to_string(), k.to_string())).cloned(),
        &|n| env.get(n).cloned(),
    )
    .map_err(|e| Error::Invalid(format!("{what} {}: {e}", r.name)))
}

/// Read the authentication object `name` (`shown` in messages) and decode it as `kedge
/// check` would; missing or invalid → [`Error::Invalid`] naming it.
async fn load<K, M>(api: Api<K>, name: &str, shown: String) -> Result<M>
where
    K: Kind
        + crd::RawSpec
        + kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    M: model::manifest::Manifest,
{
    let obj = api
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("reading {} {shown}", K::KIND)))?
        .ok_or_else(|| {
            Error::Invalid(format!("authenticationRef: {} {shown} not found", K::KIND))
        })?;
    crd::to_model(&api_version::<K>(), K::KIND, obj.meta(), &obj.raw_spec())
        .map_err(|e| Error::Invalid(format!("{} {shown}: {e}", K::KIND)))
}

pub fn api_version<K: Kind>() -> String {
    format!("{}/{}", K::GROUP, K::VERSION)
}
