//! `--emit-openreports`: keeps one OpenReports `Report` per namespace (and
//! one `ClusterReport` for ClusterRoles and ClusterRoleBindings) named
//! `palisade`, aggregating the findings of every target in it, mapped as
//! `output::openreports` documents.
//!
//! Evaluations record each target's results here ([`OpenReports::record`]);
//! a loop writes the reports of the namespaces that changed, once the work
//! queue is idle (a namespace being re-evaluated target by target is written
//! once, not once per target). A report is written by server-side apply only
//! when its content digest (kept in an annotation) differs from the last
//! written one, and each result keeps the timestamp it first had: an idle
//! resync writes nothing. A namespace with no target left loses its report.
//!
//! The reports have no ownerReference: the natural owner, the Namespace, is
//! what deletes them anyway, and the operator deletes the report of a
//! namespace it no longer scans. Uninstalling leaves them; `kubectl delete
//! reports,clusterreports -A -l app.kubernetes.io/managed-by=palisade`
//! removes them.
//!
//! Everything waits for the CRDs: they are looked up by discovery at start
//! and every minute while they are missing; the ScanPolicy's
//! `OpenReportsAvailable` condition says what was found.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::api::{Patch, PatchParams};
use sha2::{Digest, Sha256};

use super::context::Context;
use super::report::MANAGER;
use super::target::{TargetKey, TargetKind};
use crate::crd::ReportFinding;
use crate::engine::{Applies, Check, Finding, Severity};
use crate::model::ObjectRef;
use crate::output::openreports::{
    self as format, GROUP, KIND_CLUSTER_REPORT, KIND_REPORT, LABEL_MANAGED_BY, OpenReport,
    REPORT_NAME, ReportResult, ReportScope, ResultTimestamp, SOURCE, ScopeResults, VERSION,
};
use crate::policy::Policy;

/// The ScanPolicy condition that says whether OpenReports can be written.
pub const CONDITION: &str = "OpenReportsAvailable";
/// Holds the digest of the written content, to skip unchanged writes (also
/// across restarts).
pub const ANNOTATION_DIGEST: &str = "palisade.dev/openreports-digest";
/// The API the operator writes to.
pub const GROUP_VERSION: &str = "openreports.io/v1alpha1";
/// How often the loop looks for namespaces to write.
const TICK: Duration = Duration::from_secs(1);
/// A failed write of a report is retried after this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often the CRDs are looked for while they are missing.
const REDISCOVER_EVERY: Duration = Duration::from_secs(60);

/// Whether the OpenReports API is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Not looked up yet.
    Unknown,
    Available,
    /// Why not: the message for the log and the ScanPolicy status.
    Unavailable(String),
}

/// Looks `group_version` up by discovery: available when it serves both
/// `reports` and `clusterreports`.
pub async fn detect(client: &Client, group_version: &str) -> Availability {
    let missing = |what: &str| {
        Availability::Unavailable(format!(
            "{what}: install the OpenReports CRDs (reports.openreports.io, \
             clusterreports.openreports.io) to get Report objects"
        ))
    };
    match client.list_api_group_resources(group_version).await {
        Ok(list) => {
            let served: BTreeSet<&str> = list.resources.iter().map(|r| r.name.as_str()).collect();
            let absent: Vec<&str> = ["reports", "clusterreports"]
                .into_iter()
                .filter(|r| !served.contains(r))
                .collect();
            if absent.is_empty() {
                Availability::Available
            } else {
                missing(&format!(
                    "{group_version} does not serve {}",
                    absent.join(", ")
                ))
            }
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {
            missing(&format!("the API server does not serve {group_version}"))
        }
        Err(e) => Availability::Unavailable(format!("cannot discover {group_version}: {e}")),
    }
}

/// One target's part of its namespace's report.
#[derive(Clone, Debug)]
struct TargetResults {
    object: ObjectRef,
    findings: Vec<(Finding, Option<ResultTimestamp>)>,
    passes: Vec<(&'static Check, Severity)>,
}

/// What was last written for a scope.
#[derive(Clone, Debug, Default)]
struct WrittenReport {
    digest: Option<String>,
    /// When each result (by identity) first appeared.
    timestamps: HashMap<ReportResult, ResultTimestamp>,
}

/// The state behind `--emit-openreports`.
pub struct OpenReports {
    availability: Mutex<Availability>,
    /// By report scope, then target.
    targets: Mutex<BTreeMap<ReportScope, BTreeMap<TargetKey, TargetResults>>>,
    written: Mutex<BTreeMap<ReportScope, WrittenReport>>,
    dirty: Mutex<BTreeSet<ReportScope>>,
}

impl Default for OpenReports {
    fn default() -> Self {
        OpenReports::new()
    }
}

impl OpenReports {
    pub fn new() -> OpenReports {
        OpenReports {
            availability: Mutex::new(Availability::Unknown),
            targets: Mutex::new(BTreeMap::new()),
            written: Mutex::new(BTreeMap::new()),
            dirty: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn availability(&self) -> Availability {
        self.availability.lock().expect("openreports lock").clone()
    }

    fn set_availability(&self, next: Availability) {
        *self.availability.lock().expect("openreports lock") = next;
    }

    /// Records the evaluation of `key`: its findings (with the first-seen
    /// times of its ScanReport) and the checks that ran and found nothing.
    pub fn record(
        &self,
        key: &TargetKey,
        object: ObjectRef,
        findings: &[Finding],
        listed: &[ReportFinding],
        policy: &Policy,
    ) {
        let first_seen: HashMap<(&str, &str, Option<&str>), ResultTimestamp> = listed
            .iter()
            .filter_map(|f| {
                let seen = f.first_seen.as_ref()?;
                Some((
                    (f.check.as_str(), f.path.as_str(), f.container.as_deref()),
                    ResultTimestamp::from(seen.0),
                ))
            })
            .collect();
        let findings: Vec<(Finding, Option<ResultTimestamp>)> = findings
            .iter()
            .map(|f| {
                let id = (f.check.id, f.path.as_str(), f.container.as_deref());
                (f.clone(), first_seen.get(&id).copied())
            })
            .collect();
        let applies = applies(key.kind);
        let passes = crate::checks::catalog()
            .iter()
            .copied()
            .filter(|c| c.applies.covers(applies) && policy.is_enabled(c))
            .filter(|c| !findings.iter().any(|(f, _)| f.check.id == c.id))
            .map(|c| (c, policy.severity(c, c.severity)))
            .collect();
        let scope = ReportScope::of(&object);
        let results = TargetResults {
            object,
            findings,
            passes,
        };
        self.targets
            .lock()
            .expect("openreports lock")
            .entry(scope.clone())
            .or_default()
            .insert(key.clone(), results);
        self.dirty.lock().expect("openreports lock").insert(scope);
    }

    /// The target is gone or out of scope.
    pub fn forget(&self, key: &TargetKey) {
        let mut targets = self.targets.lock().expect("openreports lock");
        let Some(scope) = targets
            .iter()
            .find(|(_, in_scope)| in_scope.contains_key(key))
            .map(|(scope, _)| scope.clone())
        else {
            return;
        };
        if let Some(in_scope) = targets.get_mut(&scope) {
            in_scope.remove(key);
            if in_scope.is_empty() {
                targets.remove(&scope);
            }
        }
        drop(targets);
        self.dirty.lock().expect("openreports lock").insert(scope);
    }

    /// The report `scope` should have now, with the timestamps of the
    /// results already written; `None` when no target is left in it.
    fn desired(&self, scope: &ReportScope, now: Timestamp) -> Option<OpenReport> {
        let targets = self.targets.lock().expect("openreports lock");
        let mut results = ScopeResults::default();
        for target in targets.get(scope).into_iter().flat_map(|t| t.values()) {
            for (finding, seen) in &target.findings {
                results.add_finding(finding, *seen);
            }
            for (check, severity) in &target.passes {
                results.add_pass(check, *severity, &target.object);
            }
        }
        drop(targets);
        if results.is_empty() {
            return None;
        }
        let (results, summary) = results.finish();
        let mut report = format::build_report(scope, results, summary);
        let written = self.written.lock().expect("openreports lock");
        let previous = written.get(scope);
        for result in &mut report.results {
            let kept = previous.and_then(|p| p.timestamps.get(&result.identity()));
            result.timestamp = kept.copied().or(result.timestamp).or(Some(now.into()));
        }
        let digest = digest(&report);
        report
            .metadata
            .annotations
            .insert(ANNOTATION_DIGEST.to_owned(), digest);
        Some(report)
    }

    fn take_dirty(&self) -> BTreeSet<ReportScope> {
        std::mem::take(&mut *self.dirty.lock().expect("openreports lock"))
    }

    fn mark_dirty(&self, scope: ReportScope) {
        self.dirty.lock().expect("openreports lock").insert(scope);
    }

    fn remember(&self, scope: &ReportScope, report: Option<&OpenReport>) {
        let mut written = self.written.lock().expect("openreports lock");
        match report {
            Some(report) => {
                written.insert(scope.clone(), written_of(report));
            }
            None => {
                written.remove(scope);
            }
        }
    }

    fn written_digest(&self, scope: &ReportScope) -> Option<Option<String>> {
        self.written
            .lock()
            .expect("openreports lock")
            .get(scope)
            .map(|w| w.digest.clone())
    }
}

/// The checks that apply to a target kind.
fn applies(kind: TargetKind) -> Applies {
    match kind {
        TargetKind::ServiceAccount => Applies::ServiceAccount,
        TargetKind::Role | TargetKind::ClusterRole => Applies::Role,
        TargetKind::RoleBinding | TargetKind::ClusterRoleBinding => Applies::Binding,
        TargetKind::Namespace => Applies::Namespace,
        _ => Applies::Workload,
    }
}

/// Content hash of a report without its timestamps and digest annotation.
pub fn digest(report: &OpenReport) -> String {
    let mut stable = report.clone();
    stable.metadata.annotations.remove(ANNOTATION_DIGEST);
    for result in &mut stable.results {
        result.timestamp = None;
    }
    let bytes = serde_json::to_vec(&stable).expect("a report serializes");
    Sha256::digest(&bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn written_of(report: &OpenReport) -> WrittenReport {
    WrittenReport {
        digest: report.metadata.annotations.get(ANNOTATION_DIGEST).cloned(),
        timestamps: report
            .results
            .iter()
            .filter_map(|r| Some((r.identity(), r.timestamp?)))
            .collect(),
    }
}

/// The ScanPolicy condition for `availability`, keeping the transition
/// time of `previous` when the status did not change.
pub fn condition(availability: &Availability, previous: &[Condition], now: Timestamp) -> Condition {
    let (status, reason, message) = match availability {
        Availability::Available => (
            "True",
            "Served",
            format!("{GROUP_VERSION} is served: Palisade writes a Report per namespace"),
        ),
        Availability::Unavailable(why) => ("False", "NotServed", why.clone()),
        Availability::Unknown => (
            "Unknown",
            "Discovering",
            format!("looking up {GROUP_VERSION}"),
        ),
    };
    let last_transition_time = super::conditions::transition_time(previous, CONDITION, status, now);
    Condition {
        type_: CONDITION.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: None,
    }
}

fn api_resource(scope: &ReportScope) -> ApiResource {
    let (kind, plural) = match scope {
        ReportScope::Cluster => (KIND_CLUSTER_REPORT, "clusterreports"),
        ReportScope::Namespace(_) => (KIND_REPORT, "reports"),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, kind), plural)
}

fn api(client: &Client, scope: &ReportScope) -> Api<DynamicObject> {
    let resource = api_resource(scope);
    match scope {
        ReportScope::Namespace(Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    }
}

fn resource_name(scope: &ReportScope) -> &'static str {
    match scope {
        ReportScope::Cluster => "clusterreports",
        ReportScope::Namespace(_) => "reports",
    }
}

/// Runs `--emit-openreports` until the operator stops: waits for the CRDs,
/// loads what an earlier run wrote, then writes changed namespaces. Goes
/// back to waiting when the CRDs disappear.
pub async fn run(ctx: &Context, state: &OpenReports) {
    loop {
        wait_for_crds(ctx, state).await;
        while let Err(e) = load_existing(ctx, state).await {
            ctx.metrics.error("openreports");
            tracing::warn!(error = %e, "cannot list existing OpenReports; retrying");
            tokio::time::sleep(RETRY_AFTER).await;
        }
        write_changes(ctx, state).await;
    }
}

/// Writes the reports of changed scopes until the API is no longer served.
async fn write_changes(ctx: &Context, state: &OpenReports) {
    let mut retry: BTreeMap<ReportScope, tokio::time::Instant> = BTreeMap::new();
    loop {
        tokio::time::sleep(TICK).await;
        let now = tokio::time::Instant::now();
        retry.retain(|scope, at| {
            let due = *at <= now;
            if due {
                state.mark_dirty(scope.clone());
            }
            !due
        });
        // Wait for the namespace's evaluations to settle: one write, not
        // one per target.
        if !ctx.queue.is_idle() {
            continue;
        }
        for scope in state.take_dirty() {
            let Err(e) = sync_scope(ctx, state, &scope).await else {
                continue;
            };
            ctx.metrics.error("openreports");
            tracing::warn!(report = %scope, error = %e, "cannot write OpenReports report; retrying");
            retry.insert(scope, now + RETRY_AFTER);
            if matches!(&e, kube::Error::Api(a) if a.code == 404)
                && detect(&ctx.client, GROUP_VERSION).await != Availability::Available
            {
                // The CRDs were removed: wait for them again.
                for scope in retry.into_keys() {
                    state.mark_dirty(scope);
                }
                return;
            }
        }
    }
}

async fn wait_for_crds(ctx: &Context, state: &OpenReports) {
    loop {
        let found = detect(&ctx.client, GROUP_VERSION).await;
        let changed = state.availability() != found;
        state.set_availability(found.clone());
        match found {
            Availability::Available => {
                tracing::info!("OpenReports CRDs found: writing Report objects");
                return;
            }
            Availability::Unavailable(why) if changed => {
                tracing::warn!(reason = %why, "--emit-openreports: OpenReports API unavailable; not writing Report objects");
            }
            _ => {}
        }
        tokio::time::sleep(REDISCOVER_EVERY).await;
    }
}

/// Reads the reports an earlier run wrote, so that unchanged ones are not
/// rewritten and their timestamps stay; each is checked once.
async fn load_existing(ctx: &Context, state: &OpenReports) -> Result<(), kube::Error> {
    let labels = ListParams::default().labels(&format!("{LABEL_MANAGED_BY}={SOURCE}"));
    let mut found = Vec::new();
    match ctx.scope.watched_namespaces() {
        Some(namespaces) => {
            for ns in namespaces {
                let scope = ReportScope::Namespace(Some(ns));
                found.extend(api(&ctx.client, &scope).list(&labels).await?.items);
            }
        }
        None => {
            let all = ReportScope::Namespace(None);
            found.extend(api(&ctx.client, &all).list(&labels).await?.items);
            found.extend(
                api(&ctx.client, &ReportScope::Cluster)
                    .list(&labels)
                    .await?
                    .items,
            );
        }
    }
    for object in found {
        if object.metadata.name.as_deref() != Some(REPORT_NAME) {
            continue;
        }
        let scope = match &object.metadata.namespace {
            Some(ns) => ReportScope::Namespace(Some(ns.clone())),
            None => ReportScope::Cluster,
        };
        let written = serde_json::to_value(&object)
            .ok()
            .and_then(|v| serde_json::from_value::<OpenReport>(v).ok())
            .map(|r| written_of(&r))
            // Unreadable: rewrite it.
            .unwrap_or_default();
        state
            .written
            .lock()
            .expect("openreports lock")
            .insert(scope.clone(), written);
        state.mark_dirty(scope);
    }
    Ok(())
}

/// Writes, or deletes, the report of `scope` when it differs from the last
/// written one.
async fn sync_scope(
    ctx: &Context,
    state: &OpenReports,
    scope: &ReportScope,
) -> Result<(), kube::Error> {
    let desired = state.desired(scope, Timestamp::now());
    let written = state.written_digest(scope);
    let api = api(&ctx.client, scope);
    let Some(desired) = desired else {
        if written.is_some() {
            ctx.metrics.write(resource_name(scope), "delete");
            match api.delete(REPORT_NAME, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            tracing::info!(report = %scope, "OpenReports report deleted: nothing left to report");
            state.remember(scope, None);
        }
        return Ok(());
    };
    let digest = desired.metadata.annotations.get(ANNOTATION_DIGEST).cloned();
    if written == Some(digest) {
        return Ok(());
    }
    let body = serde_json::to_value(&desired).expect("a report serializes");
    ctx.metrics.write(resource_name(scope), "apply");
    api.patch(
        REPORT_NAME,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    tracing::debug!(report = %scope, "OpenReports report written");
    state.remember(scope, Some(&desired));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Suppression, SuppressionSource};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn check(id: &str) -> &'static Check {
        crate::checks::catalog()
            .iter()
            .copied()
            .find(|c| c.id == id)
            .expect("known check")
    }

    fn web(namespace: &str) -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some(namespace.into()),
            name: "web".into(),
            uid: Some("u1".into()),
        }
    }

    fn privileged(object: ObjectRef, suppressed: bool) -> Finding {
        Finding {
            object: object.into(),
            check: check("privileged-container"),
            severity: Severity::Critical,
            message: "container `app` is privileged".into(),
            path: "spec.template.spec.containers[name=app].securityContext.privileged".into(),
            container: Some("app".into()),
            suppressed: suppressed.then(|| {
                Box::new(Suppression {
                    source: SuppressionSource::Annotation,
                    reason: "r".into(),
                })
            }),
        }
    }

    fn key(namespace: &str) -> TargetKey {
        TargetKey::new(TargetKind::Deployment, Some(namespace), "web")
    }

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn shop() -> ReportScope {
        ReportScope::Namespace(Some("shop".into()))
    }

    #[test]
    fn a_namespace_report_has_fail_and_pass_results_with_stable_timestamps() {
        let state = OpenReports::new();
        let policy = Policy::default();
        let listed = vec![ReportFinding {
            check: "privileged-container".into(),
            title: String::new(),
            severity: Severity::Critical,
            category: String::new(),
            message: String::new(),
            path: "spec.template.spec.containers[name=app].securityContext.privileged".into(),
            container: Some("app".into()),
            remediation: String::new(),
            frameworks: vec![],
            suppressed: None,
            first_seen: Some(Time(t(5))),
            set_by: None,
            set_at: None,
            drift: false,
        }];
        let findings = [privileged(web("shop"), false)];
        state.record(&key("shop"), web("shop"), &findings, &listed, &policy);
        assert_eq!(state.take_dirty(), BTreeSet::from([shop()]));
        let first = state.desired(&shop(), t(100)).expect("a report");
        assert_eq!(first.kind, "Report");
        assert_eq!(first.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(first.summary.fail, 1);
        assert!(first.summary.pass > 10, "{:?}", first.summary);
        let fail = &first.results[0];
        assert_eq!(
            (fail.policy.as_str(), fail.result),
            ("privileged-container", format::Outcome::Fail)
        );
        assert_eq!(
            fail.timestamp,
            Some(t(5).into()),
            "the finding's first seen"
        );
        let pass = first.results.last().unwrap();
        assert_eq!(pass.result, format::Outcome::Pass);
        assert_eq!(pass.timestamp, Some(t(100).into()));
        state.remember(&shop(), Some(&first));

        // Re-evaluated later with nothing changed: same content, same digest.
        state.record(&key("shop"), web("shop"), &findings, &listed, &policy);
        let again = state.desired(&shop(), t(200)).unwrap();
        assert_eq!(again, first, "timestamps kept, nothing to write");

        // Fixed: the failure becomes a pass, the digest changes.
        state.record(&key("shop"), web("shop"), &[], &[], &policy);
        let fixed = state.desired(&shop(), t(300)).unwrap();
        assert_eq!(fixed.summary.fail, 0);
        assert_ne!(
            fixed.metadata.annotations[ANNOTATION_DIGEST],
            first.metadata.annotations[ANNOTATION_DIGEST]
        );
        let privileged_pass = fixed
            .results
            .iter()
            .find(|r| r.policy == "privileged-container")
            .unwrap();
        assert_eq!(privileged_pass.result, format::Outcome::Pass);
        assert_eq!(privileged_pass.timestamp, Some(t(300).into()));
    }

    #[test]
    fn suppressed_findings_skip_and_forgotten_targets_empty_the_scope() {
        let state = OpenReports::new();
        let policy = Policy::default();
        let findings = [privileged(web("shop"), true)];
        state.record(&key("shop"), web("shop"), &findings, &[], &policy);
        let report = state.desired(&shop(), t(0)).unwrap();
        assert_eq!(report.summary.skip, 1);
        assert_eq!(report.summary.fail, 0);
        state.take_dirty();
        state.forget(&key("shop"));
        assert_eq!(state.take_dirty(), BTreeSet::from([shop()]));
        assert!(state.desired(&shop(), t(0)).is_none(), "nothing left");
    }

    #[test]
    fn cluster_roles_go_to_the_cluster_report() {
        let state = OpenReports::new();
        let key = TargetKey::new(TargetKind::ClusterRole, None, "admin");
        let object = ObjectRef {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: "ClusterRole".into(),
            namespace: None,
            name: "admin".into(),
            uid: None,
        };
        state.record(&key, object, &[], &[], &Policy::default());
        let report = state.desired(&ReportScope::Cluster, t(0)).unwrap();
        assert_eq!(report.kind, "ClusterReport");
        assert!(
            report
                .results
                .iter()
                .all(|r| r.result == format::Outcome::Pass)
        );
        assert!(report.summary.pass > 0);
    }

    #[test]
    fn the_condition_says_why_and_keeps_its_transition_time() {
        let missing = Availability::Unavailable("the API server does not serve x".into());
        let c = condition(&missing, &[], t(0));
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (CONDITION, "False", "NotServed")
        );
        assert!(c.message.contains("does not serve"));
        let later = condition(&missing, std::slice::from_ref(&c), t(60));
        assert_eq!(later.last_transition_time, Time(t(0)));
        let found = condition(&Availability::Available, &[later], t(120));
        assert_eq!(found.status, "True");
        assert_eq!(found.last_transition_time, Time(t(120)));
    }
}
