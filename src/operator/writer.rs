//! Writes reports by server-side apply, only what changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::json;

use super::lenient::Lenient;
use super::report::{DesiredReport, MANAGER, verified_digest};
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
    /// The cached version, as a number (see [`version_number`]).
    pub version: Option<u64>,
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
            version: version_number(metadata.resource_version.as_deref()),
            labels: metadata.labels.unwrap_or_default(),
            owner_references: metadata.owner_references.unwrap_or_default(),
            target,
            status,
            generation: metadata.generation,
        }
    }
}

/// A resourceVersion as a number, to tell an older cached copy from a newer
/// one. The API server's versions are etcd revisions; one that is not a
/// number is never compared (`None`).
pub fn version_number(resource_version: Option<&str>) -> Option<u64> {
    resource_version?.parse().ok()
}

/// Whether version `a` is known to come before `b`.
fn older(a: Option<u64>, b: Option<u64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a < b)
}

/// A status this replica wrote (or found already stored): its findings
/// digest and the report's version after the write (unknown while the
/// write is in flight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastWrite {
    pub digest: String,
    pub version: Option<u64>,
}

/// What this replica last wrote to each target's report. The digest in a
/// stored status is user-writable and so never trusted alone: a stored
/// report newer than this that differs from it is restored, and a watch
/// event showing such a report re-evaluates its target. A cached report
/// older than the last write (the watch has not caught up, e.g. after an
/// API server restart) is not taken for a change.
#[derive(Default)]
pub struct WrittenDigests {
    by_target: Mutex<HashMap<TargetKey, LastWrite>>,
}

impl WrittenDigests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TargetKey, LastWrite>> {
        self.by_target.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &TargetKey) -> Option<LastWrite> {
        self.lock().get(key).cloned()
    }

    pub fn set(&self, key: &TargetKey, digest: &str, version: Option<u64>) {
        let next = LastWrite {
            digest: digest.to_owned(),
            version,
        };
        let mut map = self.lock();
        if map.get(key) != Some(&next) {
            map.insert(key.clone(), next);
        }
    }

    pub fn forget(&self, key: &TargetKey) {
        self.lock().remove(key);
    }

    /// Whether a report the watch shows (`stored`: its verified digest,
    /// `None` for a status that does not match its digest or no status)
    /// differs from what was last written to it. An event older than the
    /// last write is not a change; a report never written by this replica
    /// differs only when its status was edited.
    pub fn differs(
        &self,
        key: &TargetKey,
        stored: Option<&str>,
        version: Option<u64>,
        has_status: bool,
    ) -> bool {
        match self.lock().get(key) {
            Some(last) if older(version, last.version) => false,
            Some(last) => stored != Some(last.digest.as_str()),
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
/// target was replaced). A cached report older than the last write, which
/// was the desired status, needs nothing.
fn status_differs(
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    generation: Option<i64>,
    last: Option<&LastWrite>,
) -> bool {
    let Some(existing) = existing else {
        return true;
    };
    let Some(status) = existing.status.as_ref() else {
        return true;
    };
    let desired_digest = desired.status.findings_digest.as_deref();
    if let Some(last) = last
        && Some(last.digest.as_str()) == desired_digest
        && older(existing.version, last.version)
    {
        return false;
    }
    status.findings_digest.as_deref() != desired_digest
        || last.is_some_and(|w| Some(w.digest.as_str()) != desired_digest)
        || status.observed_generation != generation
}

/// Whether writing the status restores a report: one is stored, and it
/// either does not match its own digest or should already say what is
/// desired (this replica wrote that last, and the cached copy is not older).
fn restores(
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
    last: Option<&LastWrite>,
) -> bool {
    let Some(existing) = existing else {
        return false;
    };
    let Some(status) = existing.status.as_ref() else {
        return false;
    };
    status.findings_digest.is_none()
        || last.is_some_and(|last| {
            Some(last.digest.as_str()) == desired.status.findings_digest.as_deref()
                && !older(existing.version, last.version)
        })
}

/// The report of one target as stored and as last written.
#[derive(Clone, Copy)]
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
        // Responses are read leniently: a stored report the operator cannot
        // decode (written under older CRDs) is still overwritten.
        Some(ns) => {
            let api: Api<Lenient<ScanReport>> = Api::namespaced(client.clone(), ns);
            let fetched = fetch_unseen(&api, desired, stored, |report| {
                report.decoded().map(ExistingReport::from_scan_report)
            })
            .await?;
            let stored = Stored {
                existing: fetched.as_ref().or(stored.existing),
                ..*stored
            };
            apply_with(&api, desired, &stored, on_write).await
        }
        None => {
            let api: Api<Lenient<ClusterScanReport>> = Api::all(client.clone());
            let fetched = fetch_unseen(&api, desired, stored, |report| {
                report
                    .decoded()
                    .map(ExistingReport::from_cluster_scan_report)
            })
            .await?;
            let stored = Stored {
                existing: fetched.as_ref().or(stored.existing),
                ..*stored
            };
            apply_with(&api, desired, &stored, on_write).await
        }
    }
}

/// The report as the API server has it, when this replica wrote the desired
/// status but its cache does not show the report yet (the report watch has
/// not caught up, e.g. after an API server restart): one read instead of
/// writing the report again on every evaluation until the watch catches up.
async fn fetch_unseen<K>(
    api: &Api<K>,
    desired: &DesiredReport,
    stored: &Stored<'_>,
    existing_of: fn(K) -> Option<ExistingReport>,
) -> Result<Option<ExistingReport>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    if stored.existing.is_some() {
        return Ok(None);
    }
    let Some(last) = stored.written.get(stored.key) else {
        return Ok(None);
    };
    if Some(last.digest.as_str()) != desired.status.findings_digest.as_deref() {
        return Ok(None);
    }
    // A stored report that does not decode counts as unknown: it is
    // rewritten whole.
    let Some(mut existing) = api.get_opt(&desired.name).await?.and_then(existing_of) else {
        return Ok(None);
    };
    if let Some(status) = &mut existing.status {
        status.findings_digest = verified_digest(status);
    }
    Ok(Some(existing))
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
    let last_written = last_written.as_ref();
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
        if last_written.is_none() {
            let version = existing.and_then(|e| e.version);
            stored.written.set(stored.key, digest, version);
        }
        return Ok(written);
    }
    written.restored = restores(desired, existing, last_written);
    // Remembered before it is sent: the watch event of this write may come
    // before its answer, and must not look like someone else's change.
    stored.written.set(stored.key, digest, None);
    let mut status = desired.status.clone();
    status.observed_generation = generation;
    let body = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": desired.name},
        "status": status,
    });
    on_write("apply-status");
    match api
        .patch_status(&desired.name, &params, &Patch::Apply(&body))
        .await
    {
        Ok(applied) => {
            let version = version_number(applied.meta().resource_version.as_deref());
            stored.written.set(stored.key, digest, version);
        }
        Err(e) => {
            // What is stored now is unknown: the next evaluation trusts the
            // (verified) cache alone.
            stored.written.forget(stored.key);
            return Err(e);
        }
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

    /// A cached report at version 5 whose status verified as `digest`
    /// (`None`: edited).
    fn stored(digest: Option<&str>) -> ExistingReport {
        ExistingReport {
            status: Some(ReportStatus {
                findings_digest: digest.map(str::to_owned),
                observed_generation: Some(1),
                ..ReportStatus::default()
            }),
            generation: Some(1),
            version: Some(5),
            ..ExistingReport::default()
        }
    }

    fn last(digest: &str, version: Option<u64>) -> LastWrite {
        LastWrite {
            digest: digest.into(),
            version,
        }
    }

    #[test]
    fn a_status_is_written_when_stored_or_last_written_content_differs() {
        let want = desired("d2");
        let same = stored(Some("d2"));
        assert!(!status_differs(&want, Some(&same), Some(1), None));
        let d2 = last("d2", Some(5));
        assert!(!status_differs(&want, Some(&same), Some(1), Some(&d2)));
        assert!(
            status_differs(&want, Some(&stored(None)), Some(1), None),
            "an edited status"
        );
        assert!(
            status_differs(&want, Some(&same), Some(1), Some(&last("d1", Some(7)))),
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
        assert!(
            !status_differs(
                &want,
                Some(&stored(Some("d1"))),
                Some(1),
                Some(&last("d2", Some(9)))
            ),
            "the cache is older than the last write, which was the desired status"
        );
        assert!(
            status_differs(
                &want,
                Some(&stored(Some("d1"))),
                Some(1),
                Some(&last("d2", Some(3)))
            ),
            "changed after the last write"
        );
    }

    #[test]
    fn only_a_report_that_should_already_be_right_counts_as_restored() {
        let want = desired("d2");
        assert!(restores(&want, Some(&stored(None)), None), "edited");
        assert!(
            restores(&want, Some(&stored(Some("d1"))), Some(&last("d2", Some(3)))),
            "d2 was written, a newer d1 is stored"
        );
        assert!(
            restores(&want, Some(&stored(Some("d1"))), Some(&last("d2", None))),
            "versions unknown"
        );
        assert!(
            !restores(&want, Some(&stored(Some("d1"))), Some(&last("d1", Some(5)))),
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
            !written.differs(&key, Some("d1"), Some(1), true),
            "never written here"
        );
        assert!(written.differs(&key, None, Some(1), true), "edited");
        assert!(
            !written.differs(&key, None, Some(1), false),
            "no status yet"
        );
        written.set(&key, "d1", None);
        assert!(
            !written.differs(&key, Some("d1"), Some(4), true),
            "the event of the write, before its answer"
        );
        written.set(&key, "d1", Some(4));
        assert!(!written.differs(&key, Some("d1"), Some(4), true));
        assert!(!written.differs(&key, Some("d0"), Some(3), true), "older");
        assert!(written.differs(&key, Some("d0"), Some(6), true), "newer");
        assert!(
            written.differs(&key, None, Some(6), false),
            "status removed"
        );
        written.forget(&key);
        assert_eq!(written.get(&key), None);
        assert_eq!(version_number(Some("42")), Some(42));
        assert_eq!(version_number(Some("opaque")), None);
    }
}
