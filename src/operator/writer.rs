//! Writes reports by server-side apply, only what changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::json;

use super::report::{DesiredReport, MANAGER};
use super::target::TargetKey;
use crate::crd::{ClusterScanReport, ReportStatus, ReportTarget, ScanReport};

/// What is already stored for a report (from the watch cache). The status's
/// `findings_digest` is the one verified against the stored content when
/// the report was cached (`None` when the status does not match its own
/// digest: the user-writable status was edited).
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

/// The findings digest of the status this replica last wrote (or found
/// already stored) for each target's report. The digest in a stored status
/// is user-writable and so never trusted alone: a stored report that
/// differs from this is rewritten, and a watch event showing such a report
/// re-evaluates its target.
#[derive(Default)]
pub struct WrittenDigests {
    by_target: Mutex<HashMap<TargetKey, String>>,
}

impl WrittenDigests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TargetKey, String>> {
        self.by_target.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &TargetKey) -> Option<String> {
        self.lock().get(key).cloned()
    }

    pub fn set(&self, key: &TargetKey, digest: &str) {
        let mut map = self.lock();
        if map.get(key).map(String::as_str) != Some(digest) {
            map.insert(key.clone(), digest.to_owned());
        }
    }

    pub fn forget(&self, key: &TargetKey) {
        self.lock().remove(key);
    }

    /// Whether a report the watch shows differs from what was last written
    /// to it: `stored` is its verified digest (`None` for a status that
    /// does not match its digest, or no status). A report never written by
    /// this replica differs only when its status was edited.
    pub fn differs(&self, key: &TargetKey, stored: Option<&str>, has_status: bool) -> bool {
        match self.lock().get(key) {
            Some(written) => stored != Some(written.as_str()),
            None => has_status && stored.is_none(),
        }
    }
}

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    pub object: bool,
    pub status: bool,
    /// The status was rewritten although the findings had not changed: what
    /// was stored differed from what this replica had written, or did not
    /// match its own digest.
    pub restored: bool,
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

/// Whether the status must be written: the stored content's digest is not
/// the desired one (the findings changed, or the status was edited), the
/// status this replica last wrote is not the desired one (the cache may
/// not have seen that write yet), or the report's generation moved (its
/// target was replaced).
fn status_differs(
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    generation: Option<i64>,
    last_written: Option<&str>,
) -> bool {
    let Some(status) = existing.and_then(|e| e.status.as_ref()) else {
        return true;
    };
    let desired_digest = desired.status.findings_digest.as_deref();
    status.findings_digest.as_deref() != desired_digest
        || last_written.is_some_and(|w| Some(w) != desired_digest)
        || status.observed_generation != generation
}

/// Whether writing the status restores a report: one is stored, and it
/// either does not match its own digest or should already say what is
/// desired (this replica wrote that last).
fn restores(
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    last_written: Option<&str>,
) -> bool {
    let Some(status) = existing.and_then(|e| e.status.as_ref()) else {
        return false;
    };
    status.findings_digest.is_none()
        || (last_written.is_some() && last_written == desired.status.findings_digest.as_deref())
}

/// The report of one target as stored and as last written.
pub struct Stored<'a> {
    pub key: &'a TargetKey,
    pub existing: Option<&'a ExistingReport>,
    pub written: &'a WrittenDigests,
}

/// Applies the report of `desired` when it differs from what is stored or
/// from what was last written.
pub async fn apply(
    client: &Client,
    desired: &DesiredReport,
    stored: &Stored<'_>,
    on_write: &(dyn Fn(&str) + Sync),
) -> Result<Written, kube::Error> {
    match &desired.namespace {
        Some(ns) => {
            let api: Api<ScanReport> = Api::namespaced(client.clone(), ns);
            apply_with(&api, desired, stored, on_write).await
        }
        None => {
            let api: Api<ClusterScanReport> = Api::all(client.clone());
            apply_with(&api, desired, stored, on_write).await
        }
    }
}

async fn apply_with<K>(
    api: &Api<K>,
    desired: &DesiredReport,
    stored: &Stored<'_>,
    on_write: &(dyn Fn(&str) + Sync),
) -> Result<Written, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = PatchParams::apply(MANAGER).force();
    let api_version = K::api_version(&());
    let kind = K::kind(&());
    let existing = stored.existing;
    let last_written = stored.written.get(stored.key);
    let last_written = last_written.as_deref();
    let mut written = Written {
        object: false,
        status: false,
        restored: false,
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
    // `report::build` always sets the digest.
    let digest = desired
        .status
        .findings_digest
        .as_deref()
        .unwrap_or_default();
    if !status_differs(desired, existing, generation, last_written) {
        stored.written.set(stored.key, digest);
        return Ok(written);
    }
    written.restored = restores(desired, existing, last_written);
    // Remembered before it is sent: the watch event of this write may come
    // before its answer, and must not look like someone else's change.
    stored.written.set(stored.key, digest);
    let mut status = desired.status.clone();
    status.observed_generation = generation;
    let body = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": desired.name},
        "status": status,
    });
    on_write("apply-status");
    if let Err(e) = api
        .patch_status(&desired.name, &params, &Patch::Apply(&body))
        .await
    {
        // What is stored now is unknown: the next evaluation trusts the
        // (verified) cache alone.
        stored.written.forget(stored.key);
        return Err(e);
    }
    written.status = true;
    Ok(written)
}

/// Deletes a report; a report already gone is not an error.
pub async fn delete(
    client: &Client,
    namespace: Option<&str>,
    name: &str,
) -> Result<(), kube::Error> {
    let result = match namespace {
        Some(ns) => Api::<ScanReport>::namespaced(client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
        None => Api::<ClusterScanReport>::all(client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .map(|_| ()),
    };
    match result {
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::target::TargetKind;

    fn desired(digest: &str) -> DesiredReport {
        DesiredReport {
            name: "deployment-web".into(),
            namespace: Some("ns".into()),
            labels: BTreeMap::new(),
            target: ReportTarget::default(),
            status: ReportStatus {
                findings_digest: Some(digest.into()),
                ..ReportStatus::default()
            },
        }
    }

    /// A cached report whose status verified as `digest` (`None`: edited).
    fn stored(digest: Option<&str>) -> ExistingReport {
        ExistingReport {
            status: Some(ReportStatus {
                findings_digest: digest.map(str::to_owned),
                observed_generation: Some(1),
                ..ReportStatus::default()
            }),
            generation: Some(1),
            ..ExistingReport::default()
        }
    }

    #[test]
    fn a_status_is_written_when_stored_or_last_written_content_differs() {
        let want = desired("d2");
        let same = stored(Some("d2"));
        assert!(!status_differs(&want, Some(&same), Some(1), None));
        assert!(!status_differs(&want, Some(&same), Some(1), Some("d2")));
        assert!(
            status_differs(&want, Some(&stored(None)), Some(1), None),
            "an edited status"
        );
        assert!(
            status_differs(&want, Some(&same), Some(1), Some("d1")),
            "the cache has not seen the last write"
        );
        assert!(status_differs(
            &want,
            Some(&stored(Some("d1"))),
            Some(1),
            None
        ));
        assert!(
            status_differs(&want, Some(&same), Some(2), None),
            "replaced"
        );
        assert!(status_differs(&want, None, None, None));
    }

    #[test]
    fn only_a_report_that_should_already_be_right_counts_as_restored() {
        let want = desired("d2");
        assert!(restores(&want, Some(&stored(None)), None), "edited");
        assert!(
            restores(&want, Some(&stored(Some("d1"))), Some("d2")),
            "d2 was written, d1 is stored"
        );
        assert!(
            !restores(&want, Some(&stored(Some("d1"))), Some("d1")),
            "the findings changed"
        );
        assert!(!restores(&want, Some(&stored(Some("d1"))), None));
        assert!(!restores(&want, None, None), "a new report");
    }

    #[test]
    fn a_watched_report_differs_from_what_was_written() {
        let written = WrittenDigests::default();
        let key = TargetKey::new(TargetKind::Deployment, Some("ns"), "web");
        assert!(
            !written.differs(&key, Some("d1"), true),
            "never written here"
        );
        assert!(written.differs(&key, None, true), "edited");
        assert!(!written.differs(&key, None, false), "no status yet");
        written.set(&key, "d1");
        assert!(!written.differs(&key, Some("d1"), true));
        assert!(written.differs(&key, Some("d0"), true));
        assert!(written.differs(&key, None, false), "status removed");
        written.forget(&key);
        assert_eq!(written.get(&key), None);
    }
}
