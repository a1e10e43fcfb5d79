//! The live side of `palisade drift`: the one module of `drift` with a
//! client. Read-only, and only what the operator's reader role allows:
//! workloads, ServiceAccounts, Roles and RoleBindings and NetworkPolicies of
//! the namespaces the repository covers, the Namespaces, ClusterRoles and
//! ClusterRoleBindings it names, or the operator's reports of them. Never
//! Secrets, never ConfigMaps.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};

use crate::crd::{ClusterScanReport, ReportFinding, ScanReport};
use crate::drift::{DriftFinding, ObjectId, Side};
use crate::model::Resource;
use crate::operator::TargetKind;
use crate::operator::provenance::Provenance;

/// Objects per page of a list.
const PAGE_SIZE: u32 = 500;

/// What to read: the namespaces the repository covers and the
/// cluster-scoped objects it names.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub namespaces: BTreeSet<String>,
    pub cluster_objects: BTreeSet<(TargetKind, String)>,
}

/// A live object, decoded, with who set its fields.
pub struct LiveObject {
    pub resource: Resource,
    pub provenance: Provenance,
}

/// The live objects, and the ones that could not be decoded (named, with
/// the field).
#[derive(Default)]
pub struct LiveObjects {
    pub objects: Vec<LiveObject>,
    pub errors: Vec<String>,
}

/// A namespaced kind the drift reads: (group, version, kind, plural).
const NAMESPACED: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("batch", "v1", "Job", "jobs"),
    ("", "v1", "Pod", "pods"),
    ("", "v1", "ReplicationController", "replicationcontrollers"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
    ),
];

fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn cluster_kind(kind: TargetKind) -> Option<(&'static str, &'static str, &'static str)> {
    match kind {
        TargetKind::Namespace => Some(("", "Namespace", "namespaces")),
        TargetKind::ClusterRole => {
            Some(("rbac.authorization.k8s.io", "ClusterRole", "clusterroles"))
        }
        TargetKind::ClusterRoleBinding => Some((
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
        )),
        _ => None,
    }
}

/// Runs one API call, failing after `timeout`.
async fn within<T>(
    timeout: Duration,
    what: &str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// Lists every object of one kind in one namespace, page by page.
async fn list_all(
    api: &Api<DynamicObject>,
    what: &str,
    timeout: Duration,
) -> Result<Vec<DynamicObject>, String> {
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = within(timeout, what, api.list(&params)).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Reads the live objects in `scope`. Objects a controller owns (a
/// Deployment's ReplicaSets and Pods) are left out: their controller is
/// what Git defines and what is compared.
pub async fn read_objects(
    client: &Client,
    scope: &Scope,
    timeout: Duration,
) -> Result<LiveObjects, String> {
    let mut live = LiveObjects::default();
    for namespace in &scope.namespaces {
        for (group, version, kind, plural) in NAMESPACED {
            let resource = api_resource(group, version, kind, plural);
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
            let what = format!("listing {plural} in namespace {namespace}");
            for object in list_all(&api, &what, timeout).await? {
                if is_owned(&object) {
                    continue;
                }
                decode(&mut live, &resource.api_version, kind, object);
            }
        }
    }
    for (kind, name) in &scope.cluster_objects {
        let Some((group, kind_name, plural)) = cluster_kind(*kind) else {
            continue;
        };
        let resource = api_resource(group, "v1", kind_name, plural);
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let what = format!("reading {kind_name} {name}");
        if let Some(object) = within(timeout, &what, api.get_opt(name)).await? {
            decode(&mut live, &resource.api_version, kind_name, object);
        }
    }
    Ok(live)
}

fn is_owned(object: &DynamicObject) -> bool {
    object
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true))
}

/// Decodes one object on its own: a malformed one is an error naming it
/// and the field, and the others are still read.
fn decode(live: &mut LiveObjects, api_version: &str, kind: &str, mut object: DynamicObject) {
    let entries = object.metadata.managed_fields.take().unwrap_or_default();
    let provenance = Provenance::from_managed_fields(&entries);
    let name = format!(
        "{kind} {}/{}",
        object.metadata.namespace.as_deref().unwrap_or_default(),
        object.metadata.name.as_deref().unwrap_or_default()
    );
    object.types = None;
    let value = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(e) => {
            live.errors.push(format!("{name}: {e}"));
            return;
        }
    };
    match Resource::decode(api_version, kind, value) {
        Ok(Some(resource)) => live.objects.push(LiveObject {
            resource,
            provenance,
        }),
        Ok(None) => {}
        Err(e) => live.errors.push(e.to_string()),
    }
}

/// The live side from the reports the operator wrote: each report's
/// target and its unsuppressed findings, with who set each field.
pub async fn read_reports(
    client: &Client,
    scope: &Scope,
    timeout: Duration,
) -> Result<Side, String> {
    let mut side = Side::default();
    for namespace in &scope.namespaces {
        let api = Api::<ScanReport>::namespaced(client.clone(), namespace);
        let what = format!("listing scanreports in namespace {namespace}");
        let mut params = ListParams::default().limit(PAGE_SIZE);
        loop {
            let page = within(timeout, &what, api.list(&params)).await?;
            for report in page.items {
                let id = ObjectId {
                    kind: report.spec.target.kind.clone(),
                    namespace: Some(namespace.clone()),
                    name: report.spec.target.name.clone(),
                };
                let findings = report.status.map(|s| s.findings).unwrap_or_default();
                side.object(id).extend(reported(&findings));
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
    }
    let api = Api::<ClusterScanReport>::all(client.clone());
    for (kind, name) in &scope.cluster_objects {
        let report_name = crate::operator::report_name(*kind, name);
        let what = format!("reading clusterscanreport {report_name}");
        if let Some(report) = within(timeout, &what, api.get_opt(&report_name)).await? {
            let id = ObjectId {
                kind: kind.as_str().to_owned(),
                namespace: None,
                name: name.clone(),
            };
            let findings = report.status.map(|s| s.findings).unwrap_or_default();
            side.object(id).extend(reported(&findings));
        }
    }
    Ok(side)
}

fn reported(findings: &[ReportFinding]) -> impl Iterator<Item = DriftFinding> + '_ {
    findings
        .iter()
        .filter(|f| f.suppressed.is_none())
        .map(|f| DriftFinding {
            check: f.check.clone(),
            severity: f.severity,
            path: f.path.clone(),
            container: f.container.clone(),
            message: f.message.clone(),
            set_by: f.set_by.clone(),
            set_at: f.set_at.as_ref().map(|t| t.0),
        })
}

/// Provenance of each live object, by id, for the findings' `setBy`.
pub fn provenance_by_object(objects: &[LiveObject]) -> BTreeMap<ObjectId, &Provenance> {
    objects
        .iter()
        .map(|o| {
            let r = o.resource.object_ref();
            let id = ObjectId {
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
            };
            (id, &o.provenance)
        })
        .collect()
}
