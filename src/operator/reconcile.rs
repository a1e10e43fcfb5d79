//! One evaluation: fetch from the caches → evaluate (pure) → build the report
//! (pure) → apply by server-side apply → Events and metrics.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use tokio::sync::Semaphore;

use super::Error;
use super::context::Context;
use super::provenance::{Attribution, Provenance};
use super::report::{self, BuildInput, TargetState};
use super::snapshot;
use super::target::{TargetKey, TargetKind, is_report_of};
use super::triggers;
use super::writer::{self, ExistingReport};
use crate::engine::{self, Subject};
use crate::model::{KindTable, Resource};

/// What an evaluation did, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The report was written (created or changed).
    Written,
    /// The findings were unchanged: nothing was written.
    Unchanged,
    /// The target is gone or out of scope; its report was deleted.
    Deleted,
    /// The target is gone and had no report.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Written => "written",
            Outcome::Unchanged => "unchanged",
            Outcome::Deleted => "deleted",
            Outcome::Skipped => "skipped",
        }
    }
}

/// What the CPU-bound part of an evaluation decided; the rest talks to the
/// API server.
enum Plan {
    /// The target is gone or out of scope: remove its report if it has one.
    Remove { report_exists: bool },
    /// Apply this report (when it differs from what is stored).
    Apply(Box<Prepared>),
}

struct Prepared {
    desired: report::DesiredReport,
    existing: Option<ExistingReport>,
    target_uid: Option<String>,
}

/// Evaluates `key` and brings its report up to date.
///
/// Everything that only computes (reading the caches, the RBAC analysis,
/// the engine, building the report) runs on the runtime's blocking pool:
/// at scale one evaluation takes milliseconds to seconds of CPU, and on the
/// async worker threads it would hold back the watches, the lease renewal,
/// the API calls of other evaluations and, before they had a thread of
/// their own, the health endpoints. It runs only with a permit of
/// `computing` (as many as cores, at most `--concurrency`): the blocking
/// pool itself is not bounded that tightly. The API calls (each with its
/// own timeout, `api::GuardLayer`) stay on the async workers.
pub async fn reconcile(
    ctx: &Arc<Context>,
    key: &TargetKey,
    computing: &Semaphore,
) -> Result<Outcome, Error> {
    if !ctx.scope.owns(key) {
        // Another operator instance (limited to other namespaces) may own it.
        return Ok(Outcome::Skipped);
    }
    let plan = {
        let Ok(_permit) = computing.acquire().await else {
            // Closed only when the operator stops.
            return Err(Error::Stopped(key.to_string()));
        };
        let (shared, owned) = (ctx.clone(), key.clone());
        match tokio::task::spawn_blocking(move || plan(&shared, &owned)).await {
            Ok(plan) => plan?,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime that is shutting down drops a blocking task.
            Err(_) => return Err(Error::Stopped(key.to_string())),
        }
    };
    match plan {
        Plan::Remove { report_exists } => remove_report(ctx, key, report_exists).await,
        Plan::Apply(prepared) => apply(ctx, key, *prepared).await,
    }
}

/// The CPU-bound part of an evaluation: no API call, no await.
fn plan(ctx: &Context, key: &TargetKey) -> Result<Plan, Error> {
    let policy = ctx.policy.active();
    let existing = existing_report(ctx, key)?;
    // The caches hold only top-level workloads: an owned one is absent.
    let resource = snapshot::lookup(&ctx.stores, key)
        .map_err(|source| Error::CachedObject {
            target: key.to_string(),
            source,
        })?
        .filter(|_| ctx.scope.key_in_scope(key, &policy.spec.namespaces));
    let Some(resource) = resource else {
        if let Some(openreports) = &ctx.openreports {
            openreports.forget(key);
        }
        return Ok(Plan::Remove {
            report_exists: existing.is_some(),
        });
    };

    let now = Timestamp::now();
    let engine_policy = policy.at(now);
    let findings = evaluate(ctx, key, &resource, &engine_policy)?;
    let forbidden = not_evaluated_reason(ctx, key.kind);
    let meta = resource.metadata();
    let target = TargetState {
        uid: meta.uid.clone(),
        generation: meta.generation,
        resource_version: meta.resource_version.clone(),
    };
    // A report of another object under this name is rewritten whole, none
    // of its findings taken over.
    let existing = existing.map(|mut report| {
        if !is_report_of(&report.target, key, meta.uid.as_deref()) {
            report.status = None;
        }
        report
    });
    let previous_status = existing.as_ref().and_then(|e| e.status.as_ref());
    let mut desired = report::build(
        &BuildInput {
            key,
            target: &target,
            previous: previous_status,
            policy_hash: &policy.hash,
            not_evaluated: forbidden.as_deref(),
            attribution: &Attribution::new(
                Provenance::of_meta(meta),
                policy.spec.gitops_managers(),
            ),
            now,
        },
        &findings,
    );
    if let Some(posture) = super::posture::of_target(ctx, key, &engine_policy) {
        desired.status.posture = Some(posture);
        desired.status.findings_digest = Some(report::digest(&desired.status));
    }
    ctx.record_target(key, &findings, &desired.status.summary);
    if let Some(openreports) = &ctx.openreports {
        let object = object_ref(key, meta.uid.clone());
        openreports.record(
            key,
            object,
            &findings,
            &desired.status.findings,
            &engine_policy,
        );
    }
    Ok(Plan::Apply(Box::new(Prepared {
        desired,
        existing,
        target_uid: meta.uid.clone(),
    })))
}

/// Applies a prepared report, then publishes the Events its changes call for.
async fn apply(ctx: &Context, key: &TargetKey, prepared: Prepared) -> Result<Outcome, Error> {
    let Prepared {
        desired,
        existing,
        target_uid,
    } = prepared;
    let previous_status = existing.as_ref().and_then(|e| e.status.as_ref());
    let metrics = ctx.metrics.clone();
    let resource_name = if key.namespace.is_some() {
        "scanreports"
    } else {
        "clusterscanreports"
    };
    let on_write = move |verb: &str| metrics.write(resource_name, verb);
    let stored = writer::Stored {
        key,
        existing: existing.as_ref(),
        written: &ctx.written,
    };
    let written = writer::apply(&ctx.client, &desired, &stored, &on_write)
        .await
        .map_err(|source| Error::WriteReport {
            name: desired.name.clone(),
            source,
        })?;
    if written.restored {
        // Not a change of the target: no Events, which describe those.
        ctx.metrics.report_restored(resource_name);
        let stored = previous_status.and_then(|s| s.findings_digest.as_deref());
        tracing::warn!(target = %key, report = %desired.name, stored = stored.unwrap_or("edited"), "report restored: what was stored differed from the evaluation");
        return Ok(Outcome::Written);
    }
    if !written.status {
        return Ok(if written.any() {
            Outcome::Written
        } else {
            Outcome::Unchanged
        });
    }
    tracing::debug!(target = %key, digest = ?desired.status.findings_digest, "report written");
    let planned = report::planned_events(previous_status, &desired.status);
    if !planned.is_empty() {
        let reference = object_reference(key, target_uid);
        match ctx.events.publish(key, &reference, &planned).await {
            Ok(sent) => {
                for _ in 0..sent {
                    ctx.metrics.write("events", "create");
                }
            }
            // An Event is a courtesy: failing to send one does not fail the
            // evaluation (the report is already written).
            Err(e) => {
                ctx.metrics.error(Error::Event(e.to_string()).category());
                tracing::warn!(target = %key, error = %e, "cannot publish event");
            }
        }
    }
    Ok(Outcome::Written)
}

fn evaluate(
    ctx: &Context,
    key: &TargetKey,
    resource: &Resource,
    policy: &crate::policy::Policy,
) -> Result<Vec<engine::Finding>, Error> {
    let workload = if key.kind.is_workload() {
        Some(
            snapshot::workload_of(&ctx.stores, resource)
                .ok_or_else(|| Error::NoPodTemplate(key.to_string()))?,
        )
    } else {
        None
    };
    let mut inventory = snapshot::inventory_for(&ctx.stores, key, workload.as_ref());
    // The whole target, for CEL expressions that read outside its template.
    inventory
        .workload_shells
        .extend(crate::policy::custom::workload_shell(resource));
    let subject = match &workload {
        Some(w) => Subject::Workload(w),
        None => {
            Subject::of_object(resource).ok_or_else(|| Error::NoPodTemplate(key.to_string()))?
        }
    };
    let analysis = ctx.rbac.get(&ctx.stores, |accounts| {
        tracing::debug!(count = accounts.len(), "attack paths changed");
        triggers::enqueue_named_accounts(ctx, accounts);
    });
    let cx = engine::Context::with_rbac(&inventory, &analysis);
    // The cluster's admission policies are audited as checks (src/vap/).
    let policy = &policy.with_audits(crate::vap::cached_audits(
        &ctx.stores.admission_policies.all(),
        &ctx.stores.admission_policy_bindings.all(),
    ));
    Ok(engine::evaluate_subject(
        &subject,
        &cx,
        crate::checks::catalog(),
        policy,
    ))
}

/// The watches of the RBAC kinds, read by every evaluation that follows
/// bindings.
const RBAC_KINDS: [&str; 4] = [
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
];

/// The watched kinds (besides its own) whose objects the checks of a target
/// kind read: a refused watch of one of them makes the report untrustworthy.
fn kinds_read_by(kind: TargetKind) -> Vec<&'static str> {
    // The workloads' watches are named by their kinds' plurals.
    let workloads = || KindTable::built_in().watched_typed().map(|k| k.plural);
    let named = |names: &[&'static str]| names.to_vec();
    match kind {
        TargetKind::ServiceAccount => {
            let mut read = named(&["namespaces", "scanpolicies"]);
            read.extend(RBAC_KINDS);
            read.extend(workloads());
            read
        }
        TargetKind::Role
        | TargetKind::RoleBinding
        | TargetKind::ClusterRole
        | TargetKind::ClusterRoleBinding => {
            let mut read = named(&["serviceaccounts", "scanpolicies"]);
            read.extend(RBAC_KINDS);
            read
        }
        // The posture's framework pass rates judge every object of the
        // namespace, RBAC included.
        TargetKind::Namespace => {
            let mut read = named(&["networkpolicies", "serviceaccounts", "scanpolicies"]);
            read.extend(RBAC_KINDS);
            read.extend(workloads());
            read
        }
        // Workloads.
        _ => {
            let mut read = named(&[
                "serviceaccounts",
                "networkpolicies",
                "namespaces",
                "scanpolicies",
            ]);
            read.extend(RBAC_KINDS);
            read
        }
    }
}

/// Why reports of `kind` cannot be trusted: a kind their checks read is
/// refused by the API server.
fn not_evaluated_reason(ctx: &Context, kind: TargetKind) -> Option<String> {
    let read = kinds_read_by(kind);
    let refused: Vec<String> = ctx
        .sync
        .forbidden()
        .into_iter()
        .filter(|(k, _)| read.contains(k))
        .map(|(_, reason)| reason)
        .collect();
    (!refused.is_empty()).then(|| format!("not evaluated: {}", refused.join("; ")))
}

fn existing_report(ctx: &Context, key: &TargetKey) -> Result<Option<ExistingReport>, Error> {
    let name = key.report_name();
    let unpacked = match &key.namespace {
        Some(ns) => ctx
            .stores
            .scan_reports
            .get(Some(ns), &name)
            .map(|r| r.unpack().map(ExistingReport::from_scan_report))
            .transpose(),
        None => ctx
            .stores
            .cluster_scan_reports
            .get(None, &name)
            .map(|r| r.unpack().map(ExistingReport::from_cluster_scan_report))
            .transpose(),
    };
    unpacked.map_err(|source| Error::CachedObject {
        target: format!("report {name}"),
        source,
    })
}

async fn remove_report(ctx: &Context, key: &TargetKey, exists: bool) -> Result<Outcome, Error> {
    ctx.forget_target(key);
    ctx.written.forget(key);
    if !exists {
        return Ok(Outcome::Skipped);
    }
    let name = key.report_name();
    let resource = if key.namespace.is_some() {
        "scanreports"
    } else {
        "clusterscanreports"
    };
    ctx.metrics.write(resource, "delete");
    writer::delete(&ctx.client, key.namespace.as_deref(), &name)
        .await
        .map_err(|source| Error::DeleteReport { name, source })?;
    tracing::info!(target = %key, "report deleted: target gone or out of scope");
    Ok(Outcome::Deleted)
}

fn object_ref(key: &TargetKey, uid: Option<String>) -> crate::model::ObjectRef {
    crate::model::ObjectRef {
        api_version: key.kind.api_version().to_owned(),
        kind: key.kind.as_str().to_owned(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        uid,
    }
}

fn object_reference(key: &TargetKey, uid: Option<String>) -> ObjectReference {
    ObjectReference {
        api_version: Some(key.kind.api_version().to_owned()),
        kind: Some(key.kind.as_str().to_owned()),
        name: Some(key.name.clone()),
        namespace: key.namespace.clone(),
        uid,
        ..ObjectReference::default()
    }
}
