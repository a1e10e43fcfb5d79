//! What a workload leaves behind once its own checks have run: the few
//! fields that checks looking across objects, and the inventory-wide
//! analyses, read. A large manifest set keeps these instead of every
//! decoded pod template.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{ContainerEntry, ContainerKind, FieldPath, ObjectRef, VolumeEntry, Workload};

/// Annotations kept: Palisade's own (`palisade.dev/ignore` and its reason).
const KEPT_ANNOTATIONS: &str = "palisade.dev/";

type Labels = Option<PackedMap>;

/// A label or annotation map in two allocations, in key order. The
/// `BTreeMap` it stands for takes a node of about 500 bytes for a handful
/// of labels, and a large scan keeps two or three maps per workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedMap {
    /// Every key and value, one after the other.
    text: Box<str>,
    /// Where each key and value of `text` ends.
    ends: Box<[usize]>,
}

impl PackedMap {
    fn of<'a>(entries: impl IntoIterator<Item = (&'a String, &'a String)>) -> PackedMap {
        let mut text = String::new();
        let mut ends = Vec::new();
        for (key, value) in entries {
            for part in [key, value] {
                text.push_str(part);
                ends.push(text.len());
            }
        }
        PackedMap {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    fn packed(map: &Option<BTreeMap<String, String>>) -> Labels {
        map.as_ref().map(PackedMap::of)
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        let mut parts = starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.text[start..end]);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    fn unpacked(packed: &Labels) -> Option<BTreeMap<String, String>> {
        packed.as_ref().map(|map| {
            map.iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect()
        })
    }
}

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
#[derive(Clone, Debug)]
pub struct WorkloadFacts {
    pub object: ObjectRef,
    labels: Labels,
    /// Palisade's annotations of the object, then of its pod template.
    annotations: Labels,
    template_annotations: Labels,
    controller: Option<Box<OwnerReference>>,
    template_labels: Labels,
    template_metadata_path: FieldPath,
    spec_path: FieldPath,
    service_account_name: Option<String>,
    service_account: Option<String>,
    automount_service_account_token: Option<bool>,
    host_network: Option<bool>,
    /// Containers that set `privileged: true`, in the workload's order.
    privileged: Vec<(ContainerKind, String, FieldPath)>,
    /// Names of projected volumes with a service-account token.
    token_volumes: Vec<String>,
}

impl WorkloadFacts {
    pub fn of(workload: &Workload) -> WorkloadFacts {
        let spec = &workload.spec;
        WorkloadFacts {
            object: workload.object.clone(),
            labels: PackedMap::packed(&workload.metadata.labels),
            annotations: kept_annotations(&workload.metadata),
            template_annotations: kept_annotations(&workload.template_metadata),
            controller: controller_of(&workload.metadata).map(Box::new),
            template_labels: PackedMap::packed(&workload.template_metadata.labels),
            template_metadata_path: workload.template_metadata_path.clone(),
            spec_path: workload.spec_path.clone(),
            service_account_name: spec.service_account_name.clone(),
            service_account: spec.service_account.clone(),
            automount_service_account_token: spec.automount_service_account_token,
            host_network: spec.host_network,
            privileged: workload
                .containers
                .iter()
                .filter(|c| is_privileged(&c.container))
                .map(|c| (c.kind, c.name().to_owned(), c.path.clone()))
                .collect(),
            token_volumes: workload
                .volumes
                .iter()
                .filter(|v| v.projected_token)
                .map(|v| v.name.clone())
                .collect(),
        }
    }

    /// Whether an ownerReference names the object's controller.
    pub fn has_controller(&self) -> bool {
        self.controller.is_some()
    }

    /// The workload these facts were taken from, with only those facts
    /// set.
    pub fn workload(&self) -> Workload {
        let metadata = ObjectMeta {
            name: Some(self.object.name.clone()),
            namespace: self.object.namespace.clone(),
            uid: self.object.uid.clone(),
            labels: PackedMap::unpacked(&self.labels),
            annotations: PackedMap::unpacked(&self.annotations),
            owner_references: self.controller.as_deref().map(|c| vec![c.clone()]),
            ..ObjectMeta::default()
        };
        let template_metadata = ObjectMeta {
            labels: PackedMap::unpacked(&self.template_labels),
            annotations: PackedMap::unpacked(&self.template_annotations),
            ..ObjectMeta::default()
        };
        Workload {
            object: self.object.clone(),
            metadata,
            template_metadata,
            template_metadata_path: self.template_metadata_path.clone(),
            spec: PodSpec {
                service_account_name: self.service_account_name.clone(),
                service_account: self.service_account.clone(),
                automount_service_account_token: self.automount_service_account_token,
                host_network: self.host_network,
                ..PodSpec::default()
            },
            spec_path: self.spec_path.clone(),
            containers: self.privileged.iter().map(privileged_entry).collect(),
            volumes: self
                .token_volumes
                .iter()
                .map(|name| VolumeEntry::projected_token(name))
                .collect(),
        }
    }
}

fn kept_annotations(metadata: &ObjectMeta) -> Labels {
    let mut kept = (metadata.annotations.iter().flatten())
        .filter(|(key, _)| key.starts_with(KEPT_ANNOTATIONS))
        .peekable();
    kept.peek()?;
    Some(PackedMap::of(kept))
}

fn controller_of(metadata: &ObjectMeta) -> Option<OwnerReference> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .cloned()
}

fn is_privileged(container: &Container) -> bool {
    container
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        == Some(true)
}

fn privileged_entry((kind, name, path): &(ContainerKind, String, FieldPath)) -> ContainerEntry {
    ContainerEntry {
        kind: *kind,
        container: Container {
            name: name.clone(),
            security_context: Some(SecurityContext {
                privileged: Some(true),
                ..SecurityContext::default()
            }),
            ..Container::default()
        },
        path: path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        (entries.iter())
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_packed_map_gives_back_its_entries_in_order() {
        for entries in [
            &[][..],
            &[("app", "web")][..],
            &[("a", ""), ("", "b"), ("team", "payments"), ("ü", "ß")][..],
        ] {
            let original = Some(map(entries));
            let packed = PackedMap::packed(&original);
            assert_eq!(PackedMap::unpacked(&packed), original, "{entries:?}");
        }
        assert_eq!(PackedMap::unpacked(&PackedMap::packed(&None)), None);
    }
}
