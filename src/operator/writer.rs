//! Writes reports by server-side apply, only what changed.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::json;

use super::lenient::Lenient;
use super::report::{DesiredReport, MANAGER};
use crate::crd::{ClusterScanReport, ReportStatus, ReportTarget, ScanReport};

/// What is already stored for a report (from the watch cache).
#[derive(Clone, Debug, Default)]
pub struct ExistingReport {
    pub labels: BTreeMap<String, String>,
    pub owner_references: Vec<OwnerReference>,
    pub target: ReportTarget,
    pub status: Option<ReportStatus>,
    pub generation: Option<i64>,
}

impl ExistingReport {
    pub fn from_scan_report(r: ScanReport) -> ExistingReport {
        ExistingReport::from_parts(r.metadata, r.spec.target, r.status)
    }

    pub fn from_cluster_scan_report(r: ClusterScanReport) -> ExistingReport {
        ExistingReport::from_parts(r.metadata, r.spec.target, r.status)
    }

    fn from_parts(
        metadata: ObjectMeta,
        target: ReportTarget,
        status: Option<ReportStatus>,
    ) -> ExistingReport {
        ExistingReport {
            labels: metadata.labels.unwrap_or_default(),
            owner_references: metadata.owner_references.unwrap_or_default(),
            target,
            status,
            generation: metadata.generation,
        }
    }
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub object: bool,
    pub status: bool,
}

impl Written {
    pub fn any(self) -> bool {
        self.object || self.status
    }
}

fn owner_reference(desired: &DesiredReport) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: desired.target.api_version.clone(),
        kind: desired.target.kind.clone(),
        name: desired.target.name.clone(),
        uid: desired.target.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(false),
    })
}

/// Whether the report object (labels, owner, target) must be written.
fn object_differs(desired: &DesiredReport, existing: Option<&ExistingReport>) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    let labels_differ = desired
        .labels
        .iter()
        .any(|(k, v)| existing.labels.get(k) != Some(v));
    let owners: Vec<OwnerReference> = owner_reference(desired).into_iter().collect();
    labels_differ || existing.owner_references != owners || existing.target != desired.target
}

/// Whether the status must be written: the findings digest changed, or the
/// report's generation moved (its target was replaced).
fn status_differs(
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    generation: Option<i64>,
) -> bool {
    let Some(status) = existing.and_then(|e| e.status.as_ref()) else {
        return true;
    };
    status.findings_digest != desired.status.findings_digest
        || status.observed_generation != generation
}

/// Applies the report of `desired` when it differs from `existing`.
pub async fn apply(
    client: &Client,
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    on_write: &(dyn Fn(&str) + Sync),
) -> Result<Written, kube::Error> {
    match &desired.namespace {
        // Responses are read leniently: a stored report the operator cannot
        // decode (written under older CRDs) is still overwritten.
        Some(ns) => {
            let api: Api<Lenient<ScanReport>> = Api::namespaced(client.clone(), ns);
            apply_with(&api, desired, existing, on_write).await
        }
        None => {
            let api: Api<Lenient<ClusterScanReport>> = Api::all(client.clone());
            apply_with(&api, desired, existing, on_write).await
        }
    }
}

async fn apply_with<K>(
    api: &Api<K>,
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    on_write: &(dyn Fn(&str) + Sync),
) -> Result<Written, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::apply(MANAGER).force();
    let api_version = K::api_version(&());
    let kind = K::kind(&());
    let mut written = Written {
        object: false,
        status: false,
    };
    let mut generation = existing.and_then(|e| e.generation);
    if object_differs(desired, existing) {
        let mut metadata = json!({
            "name": desired.name,
            "labels": desired.labels,
        });
        if let Some(owner) = owner_reference(desired) {
            metadata["ownerReferences"] = json!([owner]);
        }
        if let Some(ns) = &desired.namespace {
            metadata["namespace"] = json!(ns);
        }
        let body = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": metadata,
            "spec": {"target": desired.target},
        });
        on_write("apply");
        let applied = api
            .patch(&desired.name, &params, &Patch::Apply(&body))
            .await?;
        generation = applied.meta().generation;
        written.object = true;
    }
    if status_differs(desired, existing, generation) {
        let mut status = desired.status.clone();
        status.observed_generation = generation;
        let body = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": desired.name},
            "status": status,
        });
        on_write("apply-status");
        api.patch_status(&desired.name, &params, &Patch::Apply(&body))
            .await?;
        written.status = true;
    }
    Ok(written)
}

/// Deletes a report; a report already gone is not an error.
pub async fn delete(
    client: &Client,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), kube::Error> {
    let result = match namespace {
        Some(ns) => Api::<Lenient<ScanReport>>::namespaced(client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
        None => Api::<Lenient<ClusterScanReport>>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
    };
    match result {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other,
    }
}
