//! Pod volumes as the checks see them.
//!
//! A Kubernetes `Volume` holds every possible source inline, about 3 KB per
//! volume whatever it uses; a large inventory held several thousand of them.
//! Checks only ask which sources a volume sets and look into two of them
//! (`hostPath`, and `projected` for service-account tokens), so that is
//! what is kept.

use k8s_openapi::api::core::v1::{HostPathVolumeSource, Volume};

/// One entry of `spec.volumes`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeEntry {
    pub name: String,
    /// The source fields the volume sets.
    sources: SourceSet,
    pub host_path: Option<HostPathVolumeSource>,
    /// A projected volume with a `serviceAccountToken` source: the pod gets
    /// an API token whatever `automountServiceAccountToken` says.
    pub projected_token: bool,
}

impl VolumeEntry {
    /// Whether the volume sets the source field `source` (its API name,
    /// such as `hostPath` or `configMap`).
    pub fn uses(&self, source: &str) -> bool {
        SOURCES
            .iter()
            .position(|name| *name == source)
            .is_some_and(|bit| self.sources.0 & (1 << bit) != 0)
    }

    /// A projected volume `name` with a service-account token source, as
    /// [`super::WorkloadFacts`] remember one.
    pub(crate) fn projected_token(name: &str) -> VolumeEntry {
        VolumeEntry {
            name: name.to_owned(),
            sources: SourceSet(1 << SOURCES.iter().position(|s| *s == "projected").unwrap_or(0)),
            host_path: None,
            projected_token: true,
        }
    }
}

/// Bit `i` set: the volume sets `SOURCES[i]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SourceSet(u32);

/// Every volume source field of Kubernetes v1.35, by API name.
const SOURCES: [&str; 30] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

impl From<Volume> for VolumeEntry {
    fn from(volume: Volume) -> Self {
        // In the order of SOURCES.
        let set = [
            volume.aws_elastic_block_store.is_some(),
            volume.azure_disk.is_some(),
            volume.azure_file.is_some(),
            volume.cephfs.is_some(),
            volume.cinder.is_some(),
            volume.config_map.is_some(),
            volume.csi.is_some(),
            volume.downward_api.is_some(),
            volume.empty_dir.is_some(),
            volume.ephemeral.is_some(),
            volume.fc.is_some(),
            volume.flex_volume.is_some(),
            volume.flocker.is_some(),
            volume.gce_persistent_disk.is_some(),
            volume.git_repo.is_some(),
            volume.glusterfs.is_some(),
            volume.host_path.is_some(),
            volume.image.is_some(),
            volume.iscsi.is_some(),
            volume.nfs.is_some(),
            volume.persistent_volume_claim.is_some(),
            volume.photon_persistent_disk.is_some(),
            volume.portworx_volume.is_some(),
            volume.projected.is_some(),
            volume.quobyte.is_some(),
            volume.rbd.is_some(),
            volume.scale_io.is_some(),
            volume.secret.is_some(),
            volume.storageos.is_some(),
            volume.vsphere_volume.is_some(),
        ];
        let sources = set
            .iter()
            .enumerate()
            .fold(0, |bits, (i, used)| bits | (u32::from(*used) << i));
        let projected_token = volume
            .projected
            .as_ref()
            .and_then(|p| p.sources.as_ref())
            .is_some_and(|s| s.iter().any(|s| s.service_account_token.is_some()));
        VolumeEntry {
            name: volume.name,
            sources: SourceSet(sources),
            host_path: volume.host_path,
            projected_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: serde_json::Value) -> VolumeEntry {
        VolumeEntry::from(serde_json::from_value::<Volume>(json).expect("a volume"))
    }

    #[test]
    fn every_source_field_is_known_by_its_api_name() {
        for (i, name) in SOURCES.iter().enumerate() {
            let volume = entry(serde_json::json!({"name": "v", (*name): {}}));
            assert!(volume.uses(name), "{name} not recognised");
            let others: Vec<&str> = SOURCES
                .iter()
                .enumerate()
                .filter(|(j, other)| *j != i && volume.uses(other))
                .map(|(_, other)| *other)
                .collect();
            assert!(others.is_empty(), "{name} also reads as {others:?}");
        }
    }

    #[test]
    fn host_path_and_projected_tokens_are_kept() {
        let host = entry(serde_json::json!({"name": "logs", "hostPath": {"path": "/var/log"}}));
        assert_eq!(host.name, "logs");
        assert_eq!(host.host_path.map(|h| h.path).as_deref(), Some("/var/log"));
        assert!(!host.projected_token);
        let token = entry(serde_json::json!({"name": "t", "projected": {"sources": [
            {"configMap": {"name": "ca"}},
            {"serviceAccountToken": {"path": "token"}}
        ]}}));
        assert!(token.projected_token && token.uses("projected"));
        let config = entry(serde_json::json!({"name": "c", "projected": {"sources": [
            {"configMap": {"name": "ca"}}
        ]}}));
        assert!(!config.projected_token);
    }

    #[test]
    fn an_unknown_source_name_is_not_used() {
        let volume = entry(serde_json::json!({"name": "v", "emptyDir": {}}));
        assert!(volume.uses("emptyDir"));
        assert!(!volume.uses("emptydir"));
        assert!(!volume.uses("nothing"));
    }
}
