//! `palisade drift PATH...`: the repository's manifests (read as `palisade
//! scan` reads them, standard input included) against the live cluster
//! (the kubeconfig's, read-only) or the reports the operator wrote.

mod live;

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::checks::catalog;
use crate::cli::scan::FailOn;
use crate::cli::scan::{Collected, Scanned};
use crate::drift::output::{self, DriftFormat};
use crate::drift::{DriftFinding, ObjectId, Side, compare};
use crate::engine::{self, Finding};
use crate::loader::{Input, Loader, read_policy};
use crate::model::{Inventory, ObjectRef};
use crate::operator::TargetKind;
use crate::policy::Policy;
use live::{LiveObjects, Scope};

/// No live-only finding at or above `--fail-on`.
pub const EXIT_OK: u8 = 0;
/// Live-only findings at or above `--fail-on`.
pub const EXIT_DRIFT: u8 = 1;
/// Usage error, an input that is not a valid manifest, or a cluster that
/// cannot be read.
pub const EXIT_ERROR: u8 = 2;

/// The ServiceAccount the cluster creates in every namespace: live but not
/// in Git without anyone having drifted.
const AUTOMATIC_ACCOUNT: &str = "default";

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 no live-only finding at or above --fail-on, 1 there are, \
                  2 usage error, an input that is not a valid manifest, or a cluster that \
                  cannot be read (after the full report when the comparison could be made)."
)]
pub struct DriftArgs {
    /// The repository's manifests: files and directories (recursively:
    /// .yaml, .yml, .json); `-` reads standard input (e.g. `helm template`
    /// or `kustomize build` output).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Output format; `markdown` is meant for a pull-request comment.
    #[arg(short, long, value_enum, default_value_t = DriftFormat::Table)]
    pub output: DriftFormat,

    /// Exit with status 1 when a live-only finding is at or above this
    /// severity.
    #[arg(long, value_enum, default_value_t = FailOn::High, value_name = "SEVERITY")]
    pub fail_on: FailOn,

    /// Namespace of the manifests that name none, as `kubectl apply -n`
    /// (default: the kubeconfig's namespace).
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Read the live findings from the ScanReports the operator wrote
    /// instead of evaluating the live objects.
    #[arg(long)]
    pub from_reports: bool,

    /// A ScanPolicy document (checks, severity overrides, exceptions),
    /// applied to both sides (not to `--from-reports`, whose findings the
    /// operator's policy made).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// Kubeconfig of the cluster (default: `KUBECONFIG`, `~/.kube/config`,
    /// in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// How long to wait for each API call, e.g. `30s`.
    #[arg(long, default_value = "30s", value_parser = crate::operator::parse_duration, value_name = "DURATION")]
    pub request_timeout: Duration,
}

pub async fn run(args: DriftArgs) -> ExitCode {
    match drift(&args).await {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn drift(args: &DriftArgs) -> Result<u8, String> {
    let policy = policy(args)?;
    let scanned = load_repository(&args.paths, &policy);
    let client =
        crate::cli::rbac::client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let git = git_side(&scanned, &namespace);
    let scope = scope_of(&git);
    let (live, live_errors) = if args.from_reports {
        let side = live::read_reports(&client, &scope, args.request_timeout).await?;
        (side, Vec::new())
    } else {
        let objects = live::read_objects(&client, &scope, args.request_timeout).await?;
        let errors = objects.errors.clone();
        (live_side(&objects, &policy), errors)
    };
    for error in &live_errors {
        eprintln!("error: live object: {error}");
    }
    let live = without_automatic(live, &git);
    let report = compare(&git, &live);
    write_stdout(|out| output::write(args.output, &report, out))?;
    let input_error = !scanned.errors.is_empty() || !live_errors.is_empty();
    let failed = args
        .fail_on
        .threshold()
        .is_some_and(|threshold| report.fails(threshold));
    Ok(if input_error {
        EXIT_ERROR
    } else if failed {
        EXIT_DRIFT
    } else {
        EXIT_OK
    })
}

fn policy(args: &DriftArgs) -> Result<Policy, String> {
    let Some(path) = &args.policy else {
        return Ok(Policy::default());
    };
    let spec = read_policy(path).map_err(|e| e.to_string())?;
    // Exceptions expire: the policy needs to know what time it is.
    Policy::from_spec(&spec, catalog(), Some(jiff::Timestamp::now()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The repository's objects, evaluated as `palisade scan` does.
fn load_repository(paths: &[PathBuf], policy: &Policy) -> Scanned {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::from_arg).collect();
    let mut collected = Collected::default();
    let loaded =
        Loader::new().load_each(&inputs, io::stdin().lock(), |object| collected.add(object));
    let scanned = collected.evaluate(loaded, policy);
    for warning in &scanned.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &scanned.errors {
        eprintln!("error: {error}");
    }
    scanned
}

/// The id of an object of a kind the operator reports on, the namespace
/// filled in for a namespaced one that names none; `None` for other kinds
/// (ConfigMaps, NetworkPolicies): the live side does not compare them.
fn compared_id(object: &ObjectRef, default_namespace: &str) -> Option<ObjectId> {
    let kind = TargetKind::from_kind(&object.kind)?;
    let namespace = match (kind.is_cluster_scoped(), &object.namespace) {
        (true, _) => None,
        (false, Some(ns)) => Some(ns.clone()),
        (false, None) => Some(default_namespace.to_owned()),
    };
    Some(ObjectId {
        kind: object.kind.clone(),
        namespace,
        name: object.name.clone(),
    })
}

fn drift_finding(f: &Finding) -> DriftFinding {
    DriftFinding {
        check: f.check.id.to_owned(),
        severity: f.severity,
        path: f.path.clone(),
        container: f.container.clone(),
        message: f.message.clone(),
        set_by: None,
        set_at: None,
    }
}

/// The repository's side: every object defined in it and its unsuppressed
/// findings.
fn git_side(scanned: &Scanned, default_namespace: &str) -> Side {
    let mut side = Side::default();
    for subject in engine::subjects(&scanned.inventory) {
        let reference = subject.object_ref();
        let Some(source) = scanned.sources.definition(&reference, 0) else {
            continue;
        };
        if let Some(id) = compared_id(&reference, default_namespace) {
            side.sources.insert(id.clone(), source.to_string());
            side.object(id);
        }
    }
    for f in scanned.findings.iter().filter(|f| !f.is_suppressed()) {
        if let Some(id) = compared_id(&f.object, default_namespace)
            && side.objects.contains_key(&id)
        {
            side.object(id).push(drift_finding(f));
        }
    }
    side
}

/// The namespaces the repository covers and the cluster-scoped objects it
/// names: all the live side reads.
fn scope_of(git: &Side) -> Scope {
    let mut scope = Scope::default();
    for id in git.objects.keys() {
        match (&id.namespace, TargetKind::from_kind(&id.kind)) {
            (Some(ns), _) => {
                scope.namespaces.insert(ns.clone());
            }
            (None, Some(kind)) => {
                scope.cluster_objects.insert((kind, id.name.clone()));
            }
            (None, None) => {}
        }
    }
    scope
}

/// The live side: the live objects evaluated together (as the repository's
/// are), each finding with the field manager that last set its field.
fn live_side(live: &LiveObjects, policy: &Policy) -> Side {
    let inventory = Inventory::from_resources(live.objects.iter().map(|o| &o.resource));
    let findings = engine::evaluate(&inventory, catalog(), policy);
    let provenance = live::provenance_by_object(&live.objects);
    let mut side = Side::default();
    for subject in engine::subjects(&inventory) {
        if let Some(id) = compared_id(&subject.object_ref(), "") {
            side.object(id);
        }
    }
    for f in findings.iter().filter(|f| !f.is_suppressed()) {
        let Some(id) = compared_id(&f.object, "") else {
            continue;
        };
        let mut finding = drift_finding(f);
        if let Some(manager) = provenance.get(&id).and_then(|p| p.set_by(&f.path)) {
            finding.set_by = Some(manager.name.clone());
            finding.set_at = manager.time;
        }
        side.object(id).push(finding);
    }
    side
}

/// Leaves out the live objects the cluster creates by itself, unless the
/// repository defines them too.
fn without_automatic(mut live: Side, git: &Side) -> Side {
    let automatic: BTreeSet<ObjectId> = live
        .objects
        .keys()
        .filter(|id| id.kind == "ServiceAccount" && id.name == AUTOMATIC_ACCOUNT)
        .filter(|id| !git.objects.contains_key(*id))
        .cloned()
        .collect();
    for id in automatic {
        live.objects.remove(&id);
    }
    live
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing the report: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::Loader;

    const REPO: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: 'nginx:1.27'}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {a: b}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: []
";

    fn scanned(text: &str) -> Scanned {
        let loaded = Loader::new().load_text("repo.yaml", text);
        crate::cli::scan::evaluate(loaded, &Policy::default())
    }

    #[test]
    fn the_repository_side_names_objects_in_the_default_namespace_and_skips_uncompared_kinds() {
        let git = git_side(&scanned(REPO), "shop");
        let ids: Vec<String> = git.objects.keys().map(ToString::to_string).collect();
        assert_eq!(ids, ["ClusterRole reader", "Deployment shop/web"]);
        let web = &git.objects[&ObjectId {
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        }];
        assert!(!web.is_empty(), "an unhardened container has findings");
        assert_eq!(
            git.sources.values().map(String::as_str).collect::<Vec<_>>(),
            ["repo.yaml:17", "repo.yaml:2"]
        );
        let scope = scope_of(&git);
        assert_eq!(scope.namespaces, BTreeSet::from(["shop".to_owned()]));
        assert_eq!(
            scope.cluster_objects,
            BTreeSet::from([(TargetKind::ClusterRole, "reader".to_owned())])
        );
    }

    #[test]
    fn live_findings_name_the_manager_of_their_field() {
        let value = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": true}}]}}}
        });
        let entries: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry> =
            serde_json::from_value(serde_json::json!([
                {"manager": "argocd-controller", "operation": "Apply", "time": "2026-12-01T10:00:00Z",
                 "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}},
                {"manager": "kubectl-patch", "operation": "Update", "time": "2026-12-02T09:30:00Z",
                 "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {"f:securityContext": {"f:privileged": {}}}}}}}}}
            ]))
            .unwrap();
        let live = LiveObjects {
            objects: vec![live::LiveObject {
                resource: crate::model::Resource::decode("apps/v1", "Deployment", value)
                    .unwrap()
                    .unwrap(),
                provenance: crate::operator::provenance::Provenance::from_managed_fields(&entries),
            }],
            errors: Vec::new(),
        };
        let side = live_side(&live, &Policy::default());
        let findings = &side.objects[&ObjectId {
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        }];
        let privileged = findings
            .iter()
            .find(|f| f.check == "privileged-container")
            .expect("a privileged finding");
        assert_eq!(privileged.set_by.as_deref(), Some("kubectl-patch"));
        assert!(privileged.set_at.is_some());
        assert!(
            findings
                .iter()
                .any(|f| f.set_by.as_deref() == Some("argocd-controller")),
            "{findings:?}"
        );
    }

    #[test]
    fn the_clusters_own_default_account_is_not_drift_unless_git_has_it() {
        let account = ObjectId {
            kind: "ServiceAccount".into(),
            namespace: Some("shop".into()),
            name: "default".into(),
        };
        let mut live = Side::default();
        live.object(account.clone());
        let kept = without_automatic(live.clone(), &Side::default());
        assert!(kept.objects.is_empty());
        let mut git = Side::default();
        git.object(account.clone());
        assert!(without_automatic(live, &git).objects.contains_key(&account));
    }
}
