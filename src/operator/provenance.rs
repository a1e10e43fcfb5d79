//! Who last set which field of a live object, from its `managedFields`.
//!
//! The watch caches drop `managedFields` (they are often larger than the
//! object itself). When an event arrives, before they are dropped, they are
//! reduced to a [`Provenance`]: the managers (name, operation, time) and
//! only the fields whose setter differs from that of the field above them.
//! On a Deployment that one tool applies whole this is one manager and no
//! field at all; a `kubectl edit` of one field adds that field's path.
//!
//! The result travels with the cached object as the annotation
//! [`ANNOTATION`] (set only in the operator's memory, never written back),
//! so it is replaced and dropped together with the object.
//!
//! How a finding's path maps onto the fields:
//!
//! - A finding points at a field, e.g.
//!   `spec.template.spec.containers[name=app].securityContext.privileged`;
//!   `managedFields` name it `f:spec`, `f:template`, `f:spec`,
//!   `f:containers`, `k:{"name":"app"}`, `f:securityContext`,
//!   `f:privileged`. List items keyed by `name` read as `[name=app]`, map
//!   entries (`f:` under labels or annotations) as `[key]`.
//! - The finding is attributed to the deepest field on its path that some
//!   manager set: the field itself when it is set, otherwise (a finding
//!   about an absent field, such as a missing `runAsNonRoot`) the nearest
//!   set ancestor, i.e. whoever wrote the object around the gap. When no
//!   field on the path is set, the object's main manager answers: the one
//!   that set the most fields.
//! - When several managers share a field (server-side apply of the same
//!   value), the one whose entry changed last is taken. An entry's time is
//!   the last time that manager changed any of its fields, so the time is
//!   "at or before", not exact to the field.
//! - Entries of the `status` subresource are left out: status is never
//!   scanned.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Annotation holding the encoded [`Provenance`] of a cached object. It is
/// only ever set in the operator's caches; one found on a live object (set
/// by a user) is replaced, so it cannot forge who changed what.
pub const ANNOTATION: &str = "palisade.dev/field-managers";

/// Deepest field nesting followed; deeper fields count as their ancestor at
/// this depth (a bound against hostile objects, far beyond real ones).
const MAX_DEPTH: usize = 64;

/// Most managers kept per object (the API server allows any number of
/// distinct managers; real objects have a handful).
const MAX_MANAGERS: usize = 64;

/// Most field nodes read per object, over all managers.
const MAX_NODES: usize = 20_000;

/// One `managedFields` entry, without its field set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manager {
    /// The field manager, e.g. `argocd-controller` or `kubectl-edit`.
    #[serde(rename = "n")]
    pub name: String,
    /// `Apply` (server-side apply) or `Update` (any other write).
    #[serde(rename = "o", default, skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// When this manager last changed one of its fields.
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
}

/// Who set which field of one object, reduced to what differs from the
/// field above it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(rename = "m", default)]
    managers: Vec<Manager>,
    /// Index in `managers` of the object's main manager (answer for a path
    /// with no set field on it).
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    main: Option<usize>,
    /// Field paths (as segments) whose setter differs from the one above
    /// them, with the index of that setter in `managers`. Sorted.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    fields: Vec<(Vec<String>, usize)>,
}

/// A field node of the merged field sets of all managers.
#[derive(Default)]
struct Node {
    /// Managers that set this field (indices into `managers`).
    setters: Vec<usize>,
    children: BTreeMap<String, Node>,
}

impl Provenance {
    /// Reduces an object's `managedFields`.
    pub fn from_managed_fields(entries: &[ManagedFieldsEntry]) -> Provenance {
        let mut managers = Vec::new();
        let mut root = Node::default();
        let mut budget = MAX_NODES;
        let mut counts = Vec::new();
        for entry in entries {
            if entry.subresource.as_deref() == Some("status") || managers.len() >= MAX_MANAGERS {
                continue;
            }
            let index = managers.len();
            managers.push(Manager {
                name: entry.manager.clone().unwrap_or_default(),
                operation: entry.operation.clone().unwrap_or_default(),
                time: entry.time.as_ref().map(|t| t.0),
            });
            let mut set = 0usize;
            if let Some(fields) = &entry.fields_v1 {
                merge(&mut root, &fields.0, index, 0, &mut budget, &mut set);
            }
            counts.push(set);
        }
        // Most fields set; the first entry wins a tie.
        let main = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .max_by(|(a, n), (b, m)| n.cmp(m).then(b.cmp(a)))
            .map(|(i, _)| i);
        let mut fields = Vec::new();
        let mut path = Vec::new();
        reduce(&root, &managers, main, &mut path, &mut fields);
        Provenance {
            managers,
            main,
            fields,
        }
    }

    /// Whether no manager is known (an object without `managedFields`).
    pub fn is_empty(&self) -> bool {
        self.managers.is_empty()
    }

    /// Every manager that set some field of the object.
    pub fn managers(&self) -> impl Iterator<Item = &Manager> {
        self.managers.iter()
    }

    /// The manager that last set the field a finding points at (or its
    /// nearest set ancestor); `None` when nothing is known.
    pub fn set_by(&self, finding_path: &str) -> Option<&Manager> {
        let segments = finding_segments(finding_path);
        let deepest = self
            .fields
            .iter()
            .filter(|(path, _)| segments.starts_with(path))
            .max_by_key(|(path, _)| path.len())
            .map(|(_, index)| *index);
        self.managers.get(deepest.or(self.main)?)
    }

    /// The compact form kept in [`ANNOTATION`].
    pub fn encode(&self) -> String {
        // Strings, numbers and sequences only: serializing cannot fail.
        serde_json::to_string(self).expect("provenance serializes")
    }

    /// The form [`Provenance::encode`] wrote; `None` when it is not one.
    pub fn decode(encoded: &str) -> Option<Provenance> {
        let provenance: Provenance = serde_json::from_str(encoded).ok()?;
        let known = |i: &usize| *i < provenance.managers.len();
        let valid = provenance.main.as_ref().is_none_or(known)
            && provenance.fields.iter().all(|(_, i)| known(i));
        valid.then_some(provenance)
    }

    /// The provenance kept on a cached object, if any.
    pub fn of_meta(meta: &ObjectMeta) -> Option<Provenance> {
        let encoded = meta.annotations.as_ref()?.get(ANNOTATION)?;
        Provenance::decode(encoded)
    }
}

/// Replaces an object's `managedFields` with its [`Provenance`], kept in
/// [`ANNOTATION`]: called where the watch caches strip objects.
pub fn keep(meta: &mut ObjectMeta) {
    let entries = meta.managed_fields.take().unwrap_or_default();
    let provenance = Provenance::from_managed_fields(&entries);
    let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
    if provenance.is_empty() {
        annotations.remove(ANNOTATION);
    } else {
        annotations.insert(ANNOTATION.to_owned(), provenance.encode());
    }
    if annotations.is_empty() {
        meta.annotations = None;
    }
}

/// Where one finding's field came from, as its report shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    pub set_by: Option<String>,
    pub set_at: Option<Timestamp>,
    pub drift: bool,
}

/// A target's [`Provenance`] judged against the GitOps field managers.
#[derive(Clone, Debug, Default)]
pub struct Attribution {
    provenance: Option<Provenance>,
    gitops: Vec<String>,
    /// Some manager of the object is a GitOps one. An object no GitOps tool
    /// ever wrote is not managed from Git, so nothing in it is drift.
    from_git: bool,
}

/// Nothing known of who set what (no `managedFields`): no finding is drift.
#[cfg(test)]
pub static UNKNOWN: Attribution = Attribution {
    provenance: None,
    gitops: Vec::new(),
    from_git: false,
};

impl Attribution {
    pub fn new(provenance: Option<Provenance>, gitops: Vec<String>) -> Attribution {
        let from_git = provenance
            .iter()
            .flat_map(Provenance::managers)
            .any(|m| gitops.contains(&m.name));
        Attribution {
            provenance,
            gitops,
            from_git,
        }
    }

    /// Who last set the field at `path`, and whether that was outside Git.
    pub fn origin(&self, path: &str) -> Origin {
        let Some(manager) = self.provenance.as_ref().and_then(|p| p.set_by(path)) else {
            return Origin::default();
        };
        Origin {
            set_by: Some(manager.name.clone()),
            set_at: manager.time,
            drift: self.from_git && !self.gitops.contains(&manager.name),
        }
    }
}

/// Adds one manager's field set (a `fieldsV1` tree) to the merged tree and
/// counts the fields it sets.
fn merge(
    node: &mut Node,
    fields: &Value,
    manager: usize,
    depth: usize,
    budget: &mut usize,
    set: &mut usize,
) {
    let Some(members) = fields.as_object() else {
        return;
    };
    for (key, child_fields) in members {
        if key == "." {
            continue;
        }
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let child = node.children.entry(segment(key)).or_default();
        // A leaf (`{}`) or a node with `.` is a field this manager set;
        // other nodes only lead to the fields set below them.
        let is_set = child_fields
            .as_object()
            .is_none_or(|m| m.is_empty() || m.contains_key("."));
        if is_set && !child.setters.contains(&manager) {
            child.setters.push(manager);
            *set += 1;
        }
        if depth + 1 < MAX_DEPTH {
            merge(child, child_fields, manager, depth + 1, budget, set);
        }
    }
}

/// The path segment of a `fieldsV1` key, as findings write it.
fn segment(key: &str) -> String {
    if let Some(name) = key.strip_prefix("f:") {
        return name.to_owned();
    }
    if let Some(index) = key.strip_prefix("i:") {
        return format!("[{index}]");
    }
    if let Some(value) = key.strip_prefix("v:") {
        return match serde_json::from_str::<Value>(value) {
            Ok(Value::String(s)) => format!("[{s}]"),
            _ => format!("[{value}]"),
        };
    }
    if let Some(keys) = key.strip_prefix("k:") {
        return keyed_segment(keys);
    }
    key.to_owned()
}

/// `k:{"name":"app"}` → `[name=app]`; other keys as `[a=1,b=x]`, which no
/// finding uses (their findings fall back to the list's setter).
fn keyed_segment(keys: &str) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(keys) else {
        return format!("[{keys}]");
    };
    let parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    format!("[{}]", parts.join(","))
}

/// The managers that set a node, reduced to the one that changed last
/// (latest time; the later entry on a tie).
fn last_setter(setters: &[usize], managers: &[Manager]) -> Option<usize> {
    setters
        .iter()
        .copied()
        .max_by_key(|&i| (managers[i].time, i))
}

/// Keeps the nodes whose setter differs from the answer of their nearest
/// kept ancestor (`inherited`): a path then resolves to the same manager
/// through the kept nodes as through the whole tree.
fn reduce(
    node: &Node,
    managers: &[Manager],
    inherited: Option<usize>,
    path: &mut Vec<String>,
    kept: &mut Vec<(Vec<String>, usize)>,
) {
    for (name, child) in &node.children {
        path.push(name.clone());
        let own = last_setter(&child.setters, managers);
        let below = match own {
            Some(setter) if Some(setter) != inherited => {
                kept.push((path.clone(), setter));
                Some(setter)
            }
            _ => inherited,
        };
        reduce(child, managers, below, path, kept);
        path.pop();
    }
}

/// A finding's path as segments: `a.b[name=x].c[key.with.dots]` →
/// `a`, `b`, `[name=x]`, `c`, `key.with.dots`. Map keys in brackets become
/// plain segments, as `f:` keys do in `managedFields`; named items and
/// indexes keep their brackets.
fn finding_segments(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => push_field(&mut segments, &mut current),
            '[' => {
                push_field(&mut segments, &mut current);
                let inner: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let is_item = inner.contains('=') || inner.parse::<usize>().is_ok();
                segments.push(if is_item { format!("[{inner}]") } else { inner });
            }
            c => current.push(c),
        }
    }
    push_field(&mut segments, &mut current);
    segments
}

fn push_field(segments: &mut Vec<String>, current: &mut String) {
    if !current.is_empty() {
        segments.push(std::mem::take(current));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    /// A Deployment as the API server returns it after `kubectl apply
    /// --server-side --field-manager argocd-controller`, a `kubectl edit`
    /// that made the container privileged, a `kubectl patch` of the image,
    /// and the status written by the controller manager.
    const EDITED: &str = r#"{
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web", "namespace": "shop", "managedFields": [
        {"manager": "argocd-controller", "operation": "Apply", "apiVersion": "apps/v1",
         "time": "2026-12-01T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
          "f:metadata": {"f:labels": {"f:app": {}}},
          "f:spec": {"f:replicas": {}, "f:selector": {},
            "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
              "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
                "f:securityContext": {"f:runAsNonRoot": {}}}}}}}}},
        {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-12-02T09:30:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
          "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
            "f:securityContext": {"f:privileged": {}}}}}}}}},
        {"manager": "kubectl-patch", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-12-03T08:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
          "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
            "f:image": {}}}}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-12-03T08:00:05Z", "subresource": "status", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:status": {"f:replicas": {}}}}
      ]},
      "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "app"}]}}}
    }"#;

    /// `kubectl apply` without `--server-side`: one Update entry by
    /// `kubectl-client-side-apply`, with the last-applied annotation and
    /// the keyed ports list.
    const CLIENT_SIDE: &str = r#"{
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "api", "managedFields": [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2026-11-20T12:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
          "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
          "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"api\"}": {".": {},
            "f:image": {}, "f:name": {},
            "f:ports": {".": {}, "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
            "f:hostNetwork": {}}}}}}
      ]},
      "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "api"}]}}}
    }"#;

    fn provenance(json: &str) -> Provenance {
        let deployment: Deployment = serde_json::from_str(json).unwrap();
        let entries = deployment.metadata.managed_fields.unwrap_or_default();
        Provenance::from_managed_fields(&entries)
    }

    fn who(provenance: &Provenance, path: &str) -> String {
        provenance
            .set_by(path)
            .map_or_else(|| "-".to_owned(), |m| m.name.clone())
    }

    const APP: &str = "spec.template.spec.containers[name=app]";

    #[test]
    fn a_field_set_by_an_edit_names_the_editor_and_when() {
        let p = provenance(EDITED);
        let privileged = format!("{APP}.securityContext.privileged");
        let editor = p.set_by(&privileged).unwrap();
        assert_eq!(editor.name, "kubectl-edit");
        assert_eq!(editor.operation, "Update");
        assert_eq!(
            editor.time,
            Some("2026-12-02T09:30:00Z".parse::<Timestamp>().unwrap())
        );
    }

    #[test]
    fn fields_the_applier_set_name_the_applier() {
        let p = provenance(EDITED);
        assert_eq!(
            who(&p, &format!("{APP}.securityContext.runAsNonRoot")),
            "argocd-controller"
        );
        assert_eq!(who(&p, "spec.replicas"), "argocd-controller");
        assert_eq!(who(&p, "metadata.labels[app]"), "argocd-controller");
    }

    #[test]
    fn a_field_taken_over_by_a_patch_names_the_patcher() {
        let p = provenance(EDITED);
        assert_eq!(who(&p, &format!("{APP}.image")), "kubectl-patch");
    }

    #[test]
    fn an_absent_field_is_attributed_to_its_nearest_set_ancestor() {
        let p = provenance(EDITED);
        // `capabilities` is absent: the container item was set by the applier.
        assert_eq!(
            who(&p, &format!("{APP}.securityContext.capabilities.drop")),
            "argocd-controller"
        );
        // Nothing on the path is set: the main manager answers.
        assert_eq!(
            who(&p, "spec.template.spec.automountServiceAccountToken"),
            "argocd-controller"
        );
    }

    #[test]
    fn the_status_subresource_is_left_out() {
        let p = provenance(EDITED);
        let names: Vec<_> = p.managers().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["argocd-controller", "kubectl-edit", "kubectl-patch"]
        );
    }

    #[test]
    fn client_side_apply_names_its_manager_and_keyed_lists_fall_back_to_the_item() {
        let p = provenance(CLIENT_SIDE);
        assert_eq!(
            who(&p, "spec.template.spec.hostNetwork"),
            "kubectl-client-side-apply"
        );
        assert_eq!(
            who(
                &p,
                "spec.template.spec.containers[name=api].ports[0].hostPort"
            ),
            "kubectl-client-side-apply"
        );
        // A single manager keeps no field paths at all.
        assert!(p.fields.is_empty(), "{:?}", p.fields);
    }

    #[test]
    fn shared_fields_go_to_the_manager_that_changed_last() {
        let shared = EDITED.replace(
            r#""f:securityContext": {"f:runAsNonRoot": {}}"#,
            r#""f:securityContext": {"f:runAsNonRoot": {}, "f:privileged": {}}"#,
        );
        let p = provenance(&shared);
        assert_eq!(
            who(&p, &format!("{APP}.securityContext.privileged")),
            "kubectl-edit"
        );
        let reapplied = shared.replace("2026-12-01T10:00:00Z", "2026-12-05T10:00:00Z");
        let p = provenance(&reapplied);
        assert_eq!(
            who(&p, &format!("{APP}.securityContext.privileged")),
            "argocd-controller"
        );
    }

    #[test]
    fn map_keys_with_dots_match_annotation_paths() {
        let p = provenance(&CLIENT_SIDE.replace(
            r#""f:kubectl.kubernetes.io/last-applied-configuration": {}"#,
            r#""f:kubectl.kubernetes.io/last-applied-configuration": {}, "f:team.example.com/owner": {}"#,
        ));
        assert_eq!(
            who(&p, "metadata.annotations[team.example.com/owner]"),
            "kubectl-client-side-apply"
        );
        assert_eq!(
            finding_segments("metadata.annotations[a.b/c].x"),
            ["metadata", "annotations", "a.b/c", "x"]
        );
        assert_eq!(
            finding_segments("spec.containers[name=app].ports[0]"),
            ["spec", "containers", "[name=app]", "ports", "[0]"]
        );
    }

    fn gitops() -> Vec<String> {
        vec!["argocd-controller".to_owned()]
    }

    #[test]
    fn a_field_set_outside_gitops_is_drift_and_one_set_by_gitops_is_not() {
        let a = Attribution::new(Some(provenance(EDITED)), gitops());
        let edited = a.origin(&format!("{APP}.securityContext.privileged"));
        assert!(edited.drift);
        assert_eq!(edited.set_by.as_deref(), Some("kubectl-edit"));
        assert!(edited.set_at.is_some());
        let applied = a.origin(&format!("{APP}.securityContext.runAsNonRoot"));
        assert!(!applied.drift);
        assert_eq!(applied.set_by.as_deref(), Some("argocd-controller"));
    }

    #[test]
    fn an_object_no_gitops_tool_wrote_has_no_drift() {
        let a = Attribution::new(Some(provenance(CLIENT_SIDE)), gitops());
        let origin = a.origin("spec.template.spec.hostNetwork");
        assert_eq!(origin.set_by.as_deref(), Some("kubectl-client-side-apply"));
        assert!(!origin.drift);
        let nothing = Attribution::new(None, gitops()).origin("spec.replicas");
        assert_eq!(nothing, Origin::default());
        let off = Attribution::new(Some(provenance(EDITED)), vec![]);
        assert!(
            !off.origin(&format!("{APP}.securityContext.privileged"))
                .drift
        );
    }

    #[test]
    fn no_managed_fields_means_no_answer() {
        let p = Provenance::from_managed_fields(&[]);
        assert!(p.is_empty());
        assert!(p.set_by("spec.replicas").is_none());
    }

    #[test]
    fn the_compact_form_round_trips_and_rejects_bad_indexes() {
        let p = provenance(EDITED);
        let encoded = p.encode();
        assert_eq!(Provenance::decode(&encoded), Some(p));
        assert_eq!(Provenance::decode(r#"{"m":[],"d":3}"#), None);
        assert_eq!(Provenance::decode("not json"), None);
    }

    #[test]
    fn keep_replaces_managed_fields_and_a_forged_annotation() {
        let mut deployment: Deployment = serde_json::from_str(EDITED).unwrap();
        deployment.metadata.annotations = Some(
            [(
                ANNOTATION.to_owned(),
                r#"{"m":[{"n":"forged"}],"d":0}"#.to_owned(),
            )]
            .into(),
        );
        keep(&mut deployment.metadata);
        assert!(deployment.metadata.managed_fields.is_none());
        let kept = Provenance::of_meta(&deployment.metadata).unwrap();
        assert_eq!(who(&kept, "spec.replicas"), "argocd-controller");
        assert_eq!(deployment.metadata.annotations.as_ref().unwrap().len(), 1);

        let mut bare: Deployment = serde_json::from_str(
            r#"{"metadata": {"name": "x", "annotations": {"palisade.dev/field-managers": "{}"}}}"#,
        )
        .unwrap();
        keep(&mut bare.metadata);
        assert!(
            bare.metadata.annotations.is_none(),
            "no managers: nothing kept"
        );
    }

    #[test]
    fn the_kept_form_of_an_edited_deployment_is_small() {
        let p = provenance(EDITED);
        // Three managers, and only the two fields the others took over.
        assert_eq!(p.fields.len(), 2, "{:?}", p.fields);
        let bytes = p.encode().len();
        assert!(bytes < 400, "{bytes} bytes: {}", p.encode());
    }

    #[test]
    fn hostile_depth_and_breadth_are_bounded() {
        let mut deep = Value::Object(Default::default());
        for i in 0..500 {
            deep = serde_json::json!({ format!("f:l{i}"): deep });
        }
        let wide: serde_json::Map<String, Value> = (0..50_000)
            .map(|i| (format!("f:x{i}"), serde_json::json!({})))
            .collect();
        let entry = |fields: Value| ManagedFieldsEntry {
            manager: Some("m".into()),
            fields_v1: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1(
                fields,
            )),
            ..ManagedFieldsEntry::default()
        };
        let p = Provenance::from_managed_fields(&[entry(deep), entry(Value::Object(wide))]);
        assert_eq!(p.managers().count(), 2);
        assert_eq!(who(&p, "x1"), "m");
    }
}
