//! What a workload leaves behind once its own checks have run: the few
//! fields that checks looking across objects, and the inventory-wide
//! analyses, read. A large manifest set keeps these instead of every
//! decoded pod template.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{ContainerEntry, ContainerKind, FieldPath, ObjectRef, VolumeEntry, Workload};
use crate::policy::ANNOTATION_PREFIX;

/// A label or annotation map's entries, borrowed, in key order.
type Entries<'a> = Vec<(&'a str, &'a str)>;

/// The fields of a [`Workload`] that checks of [`crate::engine::Scope::Inventory`]
/// read, and that suppressions and exceptions match on. [`WorkloadFacts::workload`]
/// gives them back as a workload in which every other field is empty.
///
/// Those checks (network-policy coverage, the RBAC of the pod's service
/// account, its token, retired API versions) and the analyses over all
/// workloads read: the identity, labels and controller of the object, the
/// labels of its pod template, the pod's service account and token settings,
/// host networking, its privileged containers and projected token volumes,
/// and the paths findings point at.
///
/// A large scan keeps one per workload, so they are held as one string:
/// each field's text after its length (see [`Packer`]), about a third of
/// the room the same fields take as `String`s and maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadFacts {
    packed: Box<str>,
}

/// The first number of the packed facts: which optional parts are there.
const HAS_CONTROLLER: u64 = 1;
const HAS_LABELS: u64 = 1 << 1;
const HAS_ANNOTATIONS: u64 = 1 << 2;
const HAS_TEMPLATE_LABELS: u64 = 1 << 3;
const HAS_TEMPLATE_ANNOTATIONS: u64 = 1 << 4;

impl WorkloadFacts {
    pub fn of(workload: &Workload) -> WorkloadFacts {
        let spec = &workload.spec;
        let controller = controller_of(&workload.metadata);
        // In the order they are read back.
        let maps = [
            (entries(workload.metadata.labels.as_ref()), HAS_LABELS),
            (kept_annotations(&workload.metadata), HAS_ANNOTATIONS),
            (
                entries(workload.template_metadata.labels.as_ref()),
                HAS_TEMPLATE_LABELS,
            ),
            (
                kept_annotations(&workload.template_metadata),
                HAS_TEMPLATE_ANNOTATIONS,
            ),
        ];
        let mut present = u64::from(controller.is_some()) * HAS_CONTROLLER;
        for (map, bit) in &maps {
            if map.is_some() {
                present |= bit;
            }
        }
        let mut p = Packer::default();
        p.number(present);
        let object = &workload.object;
        p.text(&object.api_version);
        p.text(&object.kind);
        p.optional(object.namespace.as_deref());
        p.text(&object.name);
        p.optional(object.uid.as_deref());
        if let Some(owner) = controller {
            for text in [&owner.api_version, &owner.kind, &owner.name, &owner.uid] {
                p.text(text);
            }
            p.flag(owner.block_owner_deletion);
        }
        for (map, _) in &maps {
            if let Some(map) = map {
                p.map(map);
            }
        }
        p.text(workload.template_metadata_path.as_str());
        p.text(workload.spec_path.as_str());
        p.optional(spec.service_account_name.as_deref());
        p.optional(spec.service_account.as_deref());
        p.flag(spec.automount_service_account_token);
        p.flag(spec.host_network);
        let privileged: Vec<&ContainerEntry> = (workload.containers.iter())
            .filter(|c| is_privileged(&c.container))
            .collect();
        p.count(privileged.len());
        for entry in privileged {
            p.number(container_kind_number(entry.kind));
            p.text(entry.name());
            p.text(entry.path.as_str());
        }
        let token_volumes: Vec<&str> = (workload.volumes.iter())
            .filter(|v| v.projected_token)
            .map(|v| v.name.as_str())
            .collect();
        p.count(token_volumes.len());
        for name in token_volumes {
            p.text(name);
        }
        WorkloadFacts {
            packed: p.0.into_boxed_str(),
        }
    }

    /// The parts of the facts that come before the labels.
    fn head(&self) -> (u64, ObjectView<'_>, Unpacker<'_>) {
        let mut u = Unpacker::new(&self.packed);
        let present = u.number();
        let object = ObjectView {
            api_version: u.text(),
            kind: u.text(),
            namespace: u.optional(),
            name: u.text(),
            uid: u.optional(),
        };
        (present, object, u)
    }

    /// The object these facts are of.
    pub fn object(&self) -> ObjectRef {
        self.head().1.to_owned()
    }

    /// The namespace of the object, if it has one.
    pub fn namespace(&self) -> Option<&str> {
        self.head().1.namespace
    }

    /// Whether an ownerReference names the object's controller.
    pub fn has_controller(&self) -> bool {
        self.head().0 & HAS_CONTROLLER != 0
    }

    /// The workload these facts were taken from, with only those facts
    /// set.
    pub fn workload(&self) -> Workload {
        let (present, object, mut u) = self.head();
        let object = object.to_owned();
        let has = |part: u64| present & part != 0;
        let controller = has(HAS_CONTROLLER).then(|| OwnerReference {
            api_version: u.text().to_owned(),
            kind: u.text().to_owned(),
            name: u.text().to_owned(),
            uid: u.text().to_owned(),
            block_owner_deletion: u.flag(),
            controller: Some(true),
        });
        let labels = has(HAS_LABELS).then(|| u.map());
        let annotations = has(HAS_ANNOTATIONS).then(|| u.map());
        let template_labels = has(HAS_TEMPLATE_LABELS).then(|| u.map());
        let template_annotations = has(HAS_TEMPLATE_ANNOTATIONS).then(|| u.map());
        let template_metadata_path = FieldPath::new(u.text());
        let spec_path = FieldPath::new(u.text());
        let spec = PodSpec {
            service_account_name: u.optional().map(str::to_owned),
            service_account: u.optional().map(str::to_owned),
            automount_service_account_token: u.flag(),
            host_network: u.flag(),
            ..PodSpec::default()
        };
        let containers = (0..u.number())
            .map(|_| privileged_entry(u.number(), u.text(), u.text()))
            .collect();
        let volumes = (0..u.number())
            .map(|_| VolumeEntry::projected_token(u.text()))
            .collect();
        let metadata = ObjectMeta {
            name: Some(object.name.clone()),
            namespace: object.namespace.clone(),
            uid: object.uid.clone(),
            labels,
            annotations,
            owner_references: controller.map(|c| vec![c]),
            ..ObjectMeta::default()
        };
        Workload {
            object,
            metadata,
            template_metadata: ObjectMeta {
                labels: template_labels,
                annotations: template_annotations,
                ..ObjectMeta::default()
            },
            template_metadata_path,
            spec,
            spec_path,
            containers,
            volumes,
        }
    }
}

/// The identity of the object, borrowed from the packed facts.
struct ObjectView<'a> {
    api_version: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
    uid: Option<&'a str>,
}

impl ObjectView<'_> {
    fn to_owned(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.to_owned(),
            kind: self.kind.to_owned(),
            namespace: self.namespace.map(str::to_owned),
            name: self.name.to_owned(),
            uid: self.uid.map(str::to_owned),
        }
    }
}

/// What checks across objects read of a ServiceAccount: its namespace,
/// name, `automountServiceAccountToken` and labels (read for Calico's
/// `serviceAccountSelector`), in one string like [`WorkloadFacts`]. A scan
/// of a large manifest set keeps these while the accounts themselves wait
/// on disk for their own checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFacts {
    packed: Box<str>,
}

impl AccountFacts {
    pub fn of(account: &ServiceAccount) -> AccountFacts {
        let metadata = &account.metadata;
        let mut p = Packer::default();
        p.optional(metadata.namespace.as_deref());
        p.optional(metadata.name.as_deref());
        p.flag(account.automount_service_account_token);
        match entries(metadata.labels.as_ref()) {
            None => p.number(0),
            Some(labels) => {
                p.number(1);
                p.map(&labels);
            }
        }
        AccountFacts {
            packed: p.0.into_boxed_str(),
        }
    }

    /// The namespace, the name and the `automountServiceAccountToken`.
    fn head(&self) -> (Option<&str>, Option<&str>, Option<bool>, Unpacker<'_>) {
        let mut u = Unpacker::new(&self.packed);
        (u.optional(), u.optional(), u.flag(), u)
    }

    pub fn namespace(&self) -> Option<&str> {
        self.head().0
    }

    pub fn name(&self) -> Option<&str> {
        self.head().1
    }

    /// `automountServiceAccountToken`.
    pub fn automount_token(&self) -> Option<bool> {
        self.head().2
    }

    pub fn labels(&self) -> Option<BTreeMap<String, String>> {
        let mut u = self.head().3;
        (u.number() != 0).then(|| u.map())
    }
}

/// Writes numbers and texts one after another into one string. A number
/// is written in groups of six bits, low first, each group as one ASCII
/// character: `0x40 | group` while more follow, `group` for the last. A
/// text is its length in bytes, then the text. Every byte a number adds is
/// ASCII, so the whole stays valid UTF-8 and every text starts and ends on
/// a character boundary.
#[derive(Default)]
struct Packer(String);

impl Packer {
    fn number(&mut self, mut n: u64) {
        while n >= 0x40 {
            self.0.push(char::from(0x40 | (n & 0x3f) as u8));
            n >>= 6;
        }
        self.0.push(char::from(n as u8));
    }

    fn count(&mut self, n: usize) {
        self.number(n as u64);
    }

    /// A text of [`COMMON_TEXTS`] as its number there; any other as its
    /// length past the table's, then the text.
    fn text(&mut self, text: &str) {
        match COMMON_TEXTS.iter().position(|common| *common == text) {
            Some(code) => self.count(code),
            None => {
                self.count(COMMON_TEXTS.len() + text.len());
                self.0.push_str(text);
            }
        }
    }

    /// Absent as 0, present as 1 then the text.
    fn optional(&mut self, text: Option<&str>) {
        match text {
            None => self.number(0),
            Some(text) => {
                self.number(1);
                self.text(text);
            }
        }
    }

    /// Absent as 0, false as 1, true as 2.
    fn flag(&mut self, flag: Option<bool>) {
        self.number(flag.map_or(0, |f| 1 + u64::from(f)));
    }

    fn map(&mut self, map: &[(&str, &str)]) {
        self.count(map.len());
        for (key, value) in map {
            self.text(key);
            self.text(value);
        }
    }
}

/// Texts most workloads' facts hold (API versions, kinds, the paths of pod
/// templates, well-known label keys), packed as their number here rather
/// than spelled out: a tenth of a million Deployments' facts. The empty
/// text first, so that reading past the end gives it. Kept under 32 so
/// that a text of up to 31 bytes still takes one byte for its length.
const COMMON_TEXTS: [&str; 28] = [
    "",
    "v1",
    "apps/v1",
    "batch/v1",
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "spec.template.metadata",
    "spec.template.spec",
    "spec.jobTemplate.spec.template.metadata",
    "spec.jobTemplate.spec.template.spec",
    "metadata",
    "spec",
    "app",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "team",
    "default",
    "true",
];

/// Reads back what a [`Packer`] wrote, in the same order. Past the end it
/// reads zeros and empty texts rather than failing: the string is only
/// ever one a `Packer` wrote.
struct Unpacker<'a> {
    packed: &'a str,
    at: usize,
}

impl<'a> Unpacker<'a> {
    fn new(packed: &'a str) -> Unpacker<'a> {
        Unpacker { packed, at: 0 }
    }

    fn number(&mut self) -> u64 {
        let bytes = self.packed.as_bytes();
        let mut n = 0u64;
        let mut shift = 0u32;
        while let Some(&byte) = bytes.get(self.at) {
            self.at += 1;
            let group = u64::from(byte & 0x3f);
            n |= group.checked_shl(shift).unwrap_or(0);
            shift = shift.saturating_add(6);
            if byte & 0x40 == 0 {
                break;
            }
        }
        n
    }

    fn text(&mut self) -> &'a str {
        let code = usize::try_from(self.number()).unwrap_or(usize::MAX);
        if let Some(common) = COMMON_TEXTS.get(code) {
            return common;
        }
        let len = code - COMMON_TEXTS.len();
        let end = self.at.saturating_add(len).min(self.packed.len());
        let text = self.packed.get(self.at..end).unwrap_or("");
        self.at = end;
        text
    }

    fn optional(&mut self) -> Option<&'a str> {
        (self.number() != 0).then(|| self.text())
    }

    fn flag(&mut self) -> Option<bool> {
        match self.number() {
            0 => None,
            n => Some(n == 2),
        }
    }

    fn map(&mut self) -> BTreeMap<String, String> {
        (0..self.number())
            .map(|_| (self.text().to_owned(), self.text().to_owned()))
            .collect()
    }
}

/// The annotations kept: Palisade's own (`palisade.dev/ignore` and its
/// reason).
fn kept_annotations(metadata: &ObjectMeta) -> Option<Entries<'_>> {
    let kept: Entries<'_> = (metadata.annotations.iter().flatten())
        .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn entries(map: Option<&BTreeMap<String, String>>) -> Option<Entries<'_>> {
    map.map(|map| map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
}

fn controller_of(metadata: &ObjectMeta) -> Option<&OwnerReference> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

fn is_privileged(container: &Container) -> bool {
    container
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        == Some(true)
}

/// The kinds of container, by the number the facts keep of each.
const CONTAINER_KINDS: [ContainerKind; 3] = [
    ContainerKind::Container,
    ContainerKind::Init,
    ContainerKind::Ephemeral,
];

fn container_kind_number(kind: ContainerKind) -> u64 {
    (CONTAINER_KINDS.iter().position(|k| *k == kind)).map_or(0, |at| at as u64)
}

fn privileged_entry(kind: u64, name: &str, path: &str) -> ContainerEntry {
    let kind = usize::try_from(kind)
        .ok()
        .and_then(|at| CONTAINER_KINDS.get(at));
    ContainerEntry {
        kind: kind.copied().unwrap_or(ContainerKind::Container),
        container: Container {
            name: name.to_owned(),
            security_context: Some(SecurityContext {
                privileged: Some(true),
                ..SecurityContext::default()
            }),
            ..Container::default()
        },
        path: FieldPath::new(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::resources;
    use crate::model::Inventory;

    fn workloads(yaml: &str) -> Vec<Workload> {
        Inventory::from_resources(&resources(yaml)).workloads
    }

    #[test]
    fn numbers_and_texts_read_back_as_written() {
        let long = "ü".repeat(40_000);
        let numbers = [0, 1, 63, 64, 4095, 4096, 1 << 40, u64::MAX];
        let texts = [
            "",
            "a",
            "ü",
            "é\n\"",
            long.as_str(),
            "Deployment",
            "Deployments",
            "apps/v",
            "app.kubernetes.io/name",
            "true",
        ];
        let mut p = Packer::default();
        for n in numbers {
            p.number(n);
        }
        for text in texts {
            p.text(text);
            p.optional(Some(text));
        }
        p.optional(None);
        for flag in [None, Some(false), Some(true)] {
            p.flag(flag);
        }
        let mut u = Unpacker::new(&p.0);
        for n in numbers {
            assert_eq!(u.number(), n);
        }
        for text in texts {
            assert_eq!(u.text(), text);
            assert_eq!(u.optional(), Some(text));
        }
        assert_eq!(u.optional(), None);
        for flag in [None, Some(false), Some(true)] {
            assert_eq!(u.flag(), flag);
        }
        // Past the end: nothing, not a panic.
        assert_eq!((u.number(), u.text(), u.optional()), (0, "", None));
    }

    #[test]
    fn common_texts_take_one_byte() {
        assert_eq!(COMMON_TEXTS[0], "");
        assert!(COMMON_TEXTS.len() < 32);
        for (at, text) in COMMON_TEXTS.iter().enumerate() {
            assert!(!COMMON_TEXTS[..at].contains(text), "{text} twice");
            let mut p = Packer::default();
            p.text(text);
            assert_eq!(p.0.len(), 1, "{text}");
            assert_eq!(Unpacker::new(&p.0).text(), *text);
        }
        // Other texts: their length past the table's, then the text.
        let mut p = Packer::default();
        p.text("apps/v2");
        assert_eq!(p.0.len(), 1 + "apps/v2".len());
        assert_eq!(Unpacker::new(&p.0).text(), "apps/v2");
    }

    const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  uid: 1234-ü
  labels: {app: web, "ü": "ß", empty: ""}
  annotations: {palisade.dev/ignore: "hardening/x", palisade.dev/reason: why, other: dropped}
  ownerReferences:
  - {apiVersion: v1, kind: Thing, name: not-the-controller, uid: a}
  - {apiVersion: example.com/v1, kind: Owner, name: boss, uid: b, controller: true, blockOwnerDeletion: true}
spec:
  template:
    metadata:
      labels: {}
      annotations: {palisade.dev/ignore: "rbac/y"}
    spec:
      serviceAccountName: runner
      serviceAccount: legacy
      automountServiceAccountToken: false
      hostNetwork: true
      initContainers:
      - {name: setup, image: x, securityContext: {privileged: true}}
      containers:
      - {name: app, image: x}
      - {name: agent, image: x, securityContext: {privileged: true}}
      volumes:
      - name: token
        projected: {sources: [{serviceAccountToken: {path: t}}]}
      - {name: scratch, emptyDir: {}}
"#;

    #[test]
    fn the_facts_give_back_what_checks_across_objects_read() {
        let original = &workloads(DEPLOYMENT)[0];
        let facts = WorkloadFacts::of(original);
        let back = facts.workload();
        assert_eq!(back.object, original.object);
        assert_eq!(facts.object(), original.object);
        assert_eq!(facts.namespace(), Some("shop"));
        assert!(facts.has_controller());
        assert_eq!(back.metadata.labels, original.metadata.labels);
        let annotations = back.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["palisade.dev/ignore", "palisade.dev/reason"]
        );
        let owners = back.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (owners[0].name.as_str(), owners[0].uid.as_str()),
            ("boss", "b")
        );
        assert_eq!(owners[0].block_owner_deletion, Some(true));
        assert_eq!(back.template_metadata.labels, Some(BTreeMap::new()));
        assert_eq!(
            back.template_metadata.annotations,
            original.template_metadata.annotations
        );
        assert_eq!(back.template_metadata_path, original.template_metadata_path);
        assert_eq!(back.spec_path, original.spec_path);
        assert_eq!(back.spec.service_account_name.as_deref(), Some("runner"));
        assert_eq!(back.spec.service_account.as_deref(), Some("legacy"));
        assert_eq!(back.spec.automount_service_account_token, Some(false));
        assert_eq!(back.spec.host_network, Some(true));
        let privileged: Vec<_> = (back.containers.iter())
            .map(|c| (c.kind, c.name(), c.path.as_str()))
            .collect();
        let expected: Vec<_> = (original.containers.iter())
            .filter(|c| c.name() != "app")
            .map(|c| (c.kind, c.name(), c.path.as_str()))
            .collect();
        assert_eq!(privileged, expected);
        assert!(
            privileged
                .iter()
                .any(|(kind, ..)| *kind == ContainerKind::Init)
        );
        let volumes: Vec<_> = back.volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["token"]);
        // Taken again from what they give back, the facts are the same.
        assert_eq!(WorkloadFacts::of(&back), facts);
    }

    #[test]
    fn an_account_gives_back_what_checks_across_objects_read() {
        let accounts = resources(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api, namespace: shop, labels: {team: a, \"x/y\": \"\"}}\nautomountServiceAccountToken: false\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: bare}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: \"名\", namespace: n, labels: {}}\nautomountServiceAccountToken: true\n",
        );
        let facts: Vec<AccountFacts> = (accounts.iter())
            .map(|r| match r {
                crate::model::Resource::ServiceAccount(sa) => AccountFacts::of(sa),
                other => panic!("{other:?}"),
            })
            .collect();
        let labels = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, String> = (pairs.iter())
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Some(map)
        };
        assert_eq!(facts[0].namespace(), Some("shop"));
        assert_eq!(facts[0].name(), Some("api"));
        assert_eq!(facts[0].automount_token(), Some(false));
        assert_eq!(facts[0].labels(), labels(&[("team", "a"), ("x/y", "")]));
        assert_eq!(facts[1].namespace(), None);
        assert_eq!(facts[1].name(), Some("bare"));
        assert_eq!(facts[1].automount_token(), None);
        assert_eq!(facts[1].labels(), None);
        assert_eq!(facts[2].name(), Some("名"));
        assert_eq!(facts[2].automount_token(), Some(true));
        assert_eq!(facts[2].labels(), labels(&[]));
    }

    #[test]
    fn absent_fields_stay_absent() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n\
            spec: {containers: [{name: c, image: x}]}";
        let original = &workloads(yaml)[0];
        let facts = WorkloadFacts::of(original);
        let back = facts.workload();
        assert_eq!(back.object, original.object);
        assert_eq!(facts.namespace(), None);
        assert!(!facts.has_controller());
        assert_eq!(back.metadata.labels, None);
        assert_eq!(back.metadata.annotations, None);
        assert_eq!(back.metadata.owner_references, None);
        assert_eq!(back.template_metadata.labels, None);
        assert_eq!(back.spec.service_account_name, None);
        assert_eq!(back.spec.automount_service_account_token, None);
        assert_eq!(back.spec.host_network, None);
        assert!(back.containers.is_empty() && back.volumes.is_empty());
    }
}
