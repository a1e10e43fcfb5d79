use k8s_openapi::api::core::v1::{Container, EphemeralContainer, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CustomWorkload, FieldPath, ObjectRef, Resource, VolumeEntry};

/// A pod template taken from any workload kind, with the path of the template
/// inside the user's object so findings point at the exact field.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The object the template came from (Deployment, CronJob, bare Pod, …).
    pub object: ObjectRef,
    /// That object's own metadata: labels, annotations, ownerReferences.
    pub metadata: ObjectMeta,
    /// The pod template's metadata (equal to `metadata` for a Pod).
    pub template_metadata: ObjectMeta,
    /// Path of the template metadata, e.g. `spec.template.metadata`.
    pub template_metadata_path: FieldPath,
    /// The pod spec without its containers and volumes: they are moved into
    /// `containers` and `volumes`.
    pub spec: PodSpec,
    /// Path of the pod spec, e.g. `spec.jobTemplate.spec.template.spec`.
    pub spec_path: FieldPath,
    /// Containers, init containers and ephemeral containers, in that order.
    pub containers: Vec<ContainerEntry>,
    /// The pod's volumes, moved out of `spec` like the containers.
    pub volumes: Vec<VolumeEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContainerKind {
    Container,
    Init,
    Ephemeral,
}

impl ContainerKind {
    /// The pod spec field that holds containers of this kind.
    pub fn field(self) -> &'static str {
        match self {
            ContainerKind::Container => "containers",
            ContainerKind::Init => "initContainers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container of any kind, with its path (`…containers[name=app]`).
#[derive(Clone, Debug)]
pub struct ContainerEntry {
    pub kind: ContainerKind,
    pub container: Container,
    pub path: FieldPath,
}

impl ContainerEntry {
    pub fn name(&self) -> &str {
        &self.container.name
    }

    /// An init container with `restartPolicy: Always` runs for the pod's whole
    /// life (a sidecar), so long-running checks such as probes apply to it.
    pub fn is_sidecar(&self) -> bool {
        self.kind == ContainerKind::Init
            && self.container.restart_policy.as_deref() == Some("Always")
    }
}

impl Workload {
    /// Whether a controller (a Deployment's ReplicaSet, a Job, a
    /// DaemonSet, a node for static pods…) owns the object: an owner
    /// reference marks it.
    pub fn has_controller(&self) -> bool {
        (self.metadata.owner_references.iter().flatten()).any(|o| o.controller == Some(true))
    }

    /// Builds the workload view of a resource; `None` for kinds without a pod template.
    pub fn from_resource(resource: &Resource) -> Option<Workload> {
        Self::from_owned(resource.clone())
    }

    /// The same, taking the resource apart instead of copying from it.
    pub fn from_owned(resource: Resource) -> Option<Workload> {
        let object = resource.object_ref();
        let root = FieldPath::default();
        let (metadata, template, template_path): (ObjectMeta, PodTemplateSpec, FieldPath) =
            match resource {
                Resource::Pod(pod) => {
                    let template = PodTemplateSpec {
                        metadata: Some(pod.metadata.clone()),
                        spec: pod.spec,
                    };
                    let meta_path = root.field("metadata");
                    return Some(Self::build(object, pod.metadata, template, meta_path, root));
                }
                Resource::PodTemplate(t) => (t.metadata, t.template?, root.field("template")),
                Resource::Deployment(d) => (d.metadata, d.spec?.template, spec_template(&root)),
                Resource::ReplicaSet(r) => (r.metadata, r.spec?.template?, spec_template(&root)),
                Resource::StatefulSet(s) => (s.metadata, s.spec?.template, spec_template(&root)),
                Resource::DaemonSet(d) => (d.metadata, d.spec?.template, spec_template(&root)),
                Resource::Job(j) => (j.metadata, j.spec?.template, spec_template(&root)),
                Resource::ReplicationController(r) | Resource::DeploymentConfig(r) => {
                    (r.metadata, r.spec?.template?, spec_template(&root))
                }
                Resource::Custom(c) => {
                    let path = c.kind.template.iter().fold(root.clone(), |p, f| p.field(f));
                    (c.metadata, c.template?, path)
                }
                Resource::CronJob(c) => {
                    let job = c.spec?.job_template.spec?;
                    let path = root
                        .field("spec")
                        .field("jobTemplate")
                        .field("spec")
                        .field("template");
                    (c.metadata, job.template, path)
                }
                _ => return None,
            };
        let meta_path = template_path.field("metadata");
        Some(Self::build(
            object,
            metadata,
            template,
            meta_path,
            template_path,
        ))
    }

    fn build(
        object: ObjectRef,
        metadata: ObjectMeta,
        template: PodTemplateSpec,
        template_metadata_path: FieldPath,
        template_path: FieldPath,
    ) -> Workload {
        let mut spec = template.spec.unwrap_or_default();
        let spec_path = template_path.field("spec");
        let containers = take_containers(&mut spec, &spec_path);
        let volumes = spec
            .volumes
            .take()
            .into_iter()
            .flatten()
            .map(VolumeEntry::from)
            .collect();
        Workload {
            object,
            metadata,
            template_metadata: template.metadata.unwrap_or_default(),
            template_metadata_path,
            spec,
            spec_path,
            containers,
            volumes,
        }
    }

    /// The workload of `referencing`, an object without a pod template of
    /// its own that names the workload whose template it runs (an Argo
    /// Rollout's `spec.workloadRef`): `referenced`'s template under
    /// `referencing`'s identity. The paths stay those of the referenced
    /// object's template (`spec.template…`, where a Rollout's own would be).
    pub fn for_referencing(referencing: &CustomWorkload, referenced: &Workload) -> Workload {
        let mut workload = referenced.clone();
        workload.object = ObjectRef::new(
            referencing.kind.api_version,
            referencing.kind.kind,
            &referencing.metadata,
        );
        workload.metadata = referencing.metadata.clone();
        workload
    }

    /// Whether this is the workload `reference` names (`(apiVersion, kind,
    /// name)`, in `namespace`).
    pub fn is_referenced_by(
        &self,
        namespace: Option<&str>,
        reference: &(String, String, String),
    ) -> bool {
        let (api_version, kind, name) = reference;
        super::kinds::group_of(&self.object.api_version) == super::kinds::group_of(api_version)
            && self.object.kind == *kind
            && self.object.name == *name
            && self.object.namespace.as_deref() == namespace
    }

    pub fn namespace(&self) -> Option<&str> {
        self.object.namespace.as_deref()
    }

    /// Annotations of the object itself, then of its pod template.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        [&self.metadata, &self.template_metadata]
            .into_iter()
            .find_map(|m| m.annotations.as_ref()?.get(key).map(String::as_str))
    }
}

fn spec_template(root: &FieldPath) -> FieldPath {
    root.field("spec").field("template")
}

/// Moves every container out of `spec` into entries with their paths, so
/// each container is held once (the inventory of a large cluster or manifest
/// set is mostly containers).
fn take_containers(spec: &mut PodSpec, spec_path: &FieldPath) -> Vec<ContainerEntry> {
    let count = spec.containers.len()
        + spec.init_containers.as_ref().map_or(0, Vec::len)
        + spec.ephemeral_containers.as_ref().map_or(0, Vec::len);
    let mut entries = Vec::with_capacity(count);
    let mut push = |kind: ContainerKind, container: Container| {
        let path = spec_path.field(kind.field()).named(&container.name);
        entries.push(ContainerEntry {
            kind,
            container,
            path,
        });
    };
    for c in std::mem::take(&mut spec.containers) {
        push(ContainerKind::Container, c);
    }
    for c in spec.init_containers.take().into_iter().flatten() {
        push(ContainerKind::Init, c);
    }
    for c in spec.ephemeral_containers.take().into_iter().flatten() {
        push(ContainerKind::Ephemeral, ephemeral_as_container(&c));
    }
    entries
}

/// Ephemeral containers carry the same security-relevant fields as regular
/// ones; checks see them as ordinary containers.
fn ephemeral_as_container(ephemeral: &EphemeralContainer) -> Container {
    Container {
        args: ephemeral.args.clone(),
        command: ephemeral.command.clone(),
        env: ephemeral.env.clone(),
        env_from: ephemeral.env_from.clone(),
        image: ephemeral.image.clone(),
        image_pull_policy: ephemeral.image_pull_policy.clone(),
        lifecycle: ephemeral.lifecycle.clone(),
        liveness_probe: ephemeral.liveness_probe.clone(),
        name: ephemeral.name.clone(),
        ports: ephemeral.ports.clone(),
        readiness_probe: ephemeral.readiness_probe.clone(),
        resources: ephemeral.resources.clone(),
        security_context: ephemeral.security_context.clone(),
        startup_probe: ephemeral.startup_probe.clone(),
        volume_devices: ephemeral.volume_devices.clone(),
        volume_mounts: ephemeral.volume_mounts.clone(),
        working_dir: ephemeral.working_dir.clone(),
        ..Container::default()
    }
}
