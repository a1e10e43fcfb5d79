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
/// the desired one (the findings changed, or the status was edited), or the
/// status this replica last wrote is not the desired one (the cache may not
/// have seen that write yet). A cached report older than the last write,
/// which was the desired status, needs nothing. A replaced target needs no
/// check of its own here: its new uid is in `spec.target`, so the object
/// differs and the whole report is written.
fn status_differs(
    desired: &DesiredReport,
    existing: Option<&ExistingReport>,
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

/// The whole report, object and status, as one server-side apply body.
/// The report CRDs have no status subresource (see
/// [`crate::crd::scan_report::with_status_in_the_object`]), so this one
/// request writes both. Every field is always sent: a field this manager
/// owns and leaves out of an apply is removed.
fn report_body(desired: &DesiredReport, api_version: &str, kind: &str) -> serde_json::Value {
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
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "spec": {"target": desired.target},
        "status": desired.status,
    })
}

/// What a report the API server answered with holds beyond the status
/// applied, as a JSON merge patch that removes it: `None` when it holds
/// just that (or does not decode). Fields another field manager owns are
/// kept beside an apply: a report whose status was written through the
/// status subresource of an earlier CRD keeps that manager's fields (e.g.
/// the findings of a workload since fixed), which only a patch removes.
fn foreign_fields_patch(
    applied: Option<&ReportStatus>,
    desired: &ReportStatus,
) -> Option<serde_json::Value> {
    let applied = applied?;
    if verified_digest(applied).as_deref() == desired.findings_digest.as_deref() {
        return None;
    }
    let from = serde_json::to_value(applied).ok()?;
    let to = serde_json::to_value(desired).ok()?;
    Some(json!({"status": merge_diff(&from, &to)}))
}

/// The JSON merge patch (RFC 7386) that turns `from` into `to`: keys only
/// in `from` become `null`, objects are compared key by key, anything else
/// is replaced whole.
fn merge_diff(from: &serde_json::Value, to: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let (Value::Object(from), Value::Object(to)) = (from, to) else {
        return to.clone();
    };
    let mut patch = serde_json::Map::new();
    for key in from.keys().filter(|k| !to.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, value) in to {
        patch.insert(
            key.clone(),
            from.get(key)
                .map_or_else(|| value.clone(), |old| merge_diff(old, value)),
        );
    }
    Value::Object(patch)
}

async fn apply_with<K>(
    api: &Api<K>,
    desired: &DesiredReport,
    stored: &Stored<'_>,
    on_write: &(dyn Fn(&str) + Sync),
) -> Result<Written, kube::Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + ReportOf,
{
    let existing = stored.existing;
    let last_written = stored.written.get(stored.key);
    let last_written = last_written.as_ref();
    // `report::build` always sets the digest.
    let digest = desired
        .status
        .findings_digest
        .as_deref()
        .unwrap_or_default();
    let written = Written {
        object: object_differs(desired, existing),
        status: status_differs(desired, existing, last_written),
        restored: false,
    };
    if !written.any() {
        if last_written.is_none() {
            let version = existing.and_then(|e| e.version);
            stored.written.set(stored.key, digest, version);
        }
        return Ok(written);
    }
    let written = Written {
        restored: written.status && restores(desired, existing, last_written),
        ..written
    };
    // Remembered before it is sent: the watch event of this write may come
    // before its answer, and must not look like someone else's change.
    stored.written.set(stored.key, digest, None);
    let params = PatchParams::apply(MANAGER).force();
    let body = report_body(desired, &K::api_version(&()), &K::kind(&()));
    on_write("apply");
    let mut applied = match api
        .patch(&desired.name, &params, &Patch::Apply(&body))
        .await
    {
        Ok(applied) => applied,
        Err(e) => {
            // What is stored now is unknown: the next evaluation trusts the
            // (verified) cache alone.
            stored.written.forget(stored.key);
            return Err(e);
        }
    };
    if let Some(patch) = foreign_fields_patch(applied.report_status().as_ref(), &desired.status) {
        // Once per report, after an upgrade from the status subresource.
        on_write("patch-status");
        applied = api
            .patch(
                &desired.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .inspect_err(|_| stored.written.forget(stored.key))?;
    }
    let version = version_number(applied.meta().resource_version.as_deref());
    stored.written.set(stored.key, digest, version);
    Ok(written)
}

/// The status of a report as the API server answered a write with.
pub trait ReportOf {
    fn report_status(&self) -> Option<ReportStatus>;
}

impl<K: ReportOf> ReportOf for Lenient<K> {
    fn report_status(&self) -> Option<ReportStatus> {
        match self {
            Lenient::Decoded(report) => report.report_status(),
            Lenient::Undecodable { .. } => None,
        }
    }
}

impl ReportOf for ScanReport {
    fn report_status(&self) -> Option<ReportStatus> {
        self.status.clone()
    }
}

impl ReportOf for ClusterScanReport {
    fn report_status(&self) -> Option<ReportStatus> {
        self.status.clone()
    }
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
    use crate::engine::Severity;
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
        assert!(!status_differs(&want, Some(&same), None));
        let d2 = last("d2", Some(5));
        assert!(!status_differs(&want, Some(&same), Some(&d2)));
        assert!(
            status_differs(&want, Some(&stored(None)), None),
            "an edited status"
        );
        assert!(
            status_differs(&want, Some(&same), Some(&last("d1", Some(7)))),
            "the cache has not seen the last write"
        );
        assert!(status_differs(&want, Some(&stored(Some("d1"))), None));
        assert!(status_differs(&want, None, None));
        assert!(
            !status_differs(&want, Some(&stored(Some("d1"))), Some(&last("d2", Some(9)))),
            "the cache is older than the last write, which was the desired status"
        );
        assert!(
            status_differs(&want, Some(&stored(Some("d1"))), Some(&last("d2", Some(3)))),
            "changed after the last write"
        );
    }

    #[test]
    fn a_replaced_target_rewrites_the_object_and_its_status_together() {
        let mut want = desired("d2");
        want.target.uid = Some("new".into());
        let mut same = stored(Some("d2"));
        same.target.uid = Some("new".into());
        same.owner_references = owner_reference(&want).into_iter().collect();
        assert!(!object_differs(&want, Some(&same)));
        let mut replaced = same.clone();
        replaced.target.uid = Some("old".into());
        assert!(object_differs(&want, Some(&replaced)));
        let body = report_body(&want, "palisade.dev/v1alpha1", "ScanReport");
        assert_eq!(body["spec"]["target"]["uid"], "new");
        assert_eq!(
            body["status"]["findingsDigest"], "d2",
            "one apply carries both"
        );
        assert_eq!(body["metadata"]["namespace"], "ns");
    }

    /// A stored status as the API server holds it: with a digest that
    /// verifies.
    fn verified(status: ReportStatus) -> ReportStatus {
        let digest = crate::operator::report::digest(&status);
        ReportStatus {
            findings_digest: Some(digest),
            ..status
        }
    }

    #[test]
    fn fields_kept_from_an_earlier_manager_are_patched_away() {
        let fixed = verified(ReportStatus {
            total_findings: 0,
            ..ReportStatus::default()
        });
        assert_eq!(
            foreign_fields_patch(Some(&fixed), &fixed),
            None,
            "the apply wrote just what was desired"
        );
        assert_eq!(foreign_fields_patch(None, &fixed), None, "undecodable");
        // The findings of a workload since fixed, kept by the status
        // subresource's manager beside the applied (empty) status.
        let mut kept = fixed.clone();
        kept.truncated = true;
        kept.summary.worst = Some(Severity::High);
        kept.findings_digest = fixed.findings_digest.clone();
        let patch = foreign_fields_patch(Some(&kept), &fixed).expect("a patch");
        assert_eq!(patch["status"]["truncated"], serde_json::Value::Null);
        assert_eq!(patch["status"]["summary"]["worst"], serde_json::Value::Null);
        assert_eq!(patch["status"]["summary"]["score"], 0);
        assert_eq!(
            patch["status"]["findingsDigest"],
            json!(fixed.findings_digest)
        );
    }

    #[test]
    fn a_merge_diff_nulls_what_is_gone_and_replaces_lists_whole() {
        let from = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": true});
        let to = json!({"a": 1, "b": {"c": 4}, "l": [2], "new": "x"});
        let patch = merge_diff(&from, &to);
        assert_eq!(
            patch,
            json!({"a": 1, "b": {"c": 4, "d": null}, "l": [2], "new": "x", "gone": null})
        );
        let mut applied = from.clone();
        json_merge(&mut applied, &patch);
        assert_eq!(applied, to);
    }

    /// RFC 7386, as the API server applies a merge patch.
    fn json_merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
        let serde_json::Value::Object(patch) = patch else {
            *target = patch.clone();
            return;
        };
        if !target.is_object() {
            *target = json!({});
        }
        let map = target.as_object_mut().unwrap();
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                json_merge(
                    map.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
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
