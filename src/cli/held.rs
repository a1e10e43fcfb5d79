//! ServiceAccounts, roles and bindings of a large manifest set, held in a
//! temporary file between being read and being checked.
//!
//! What the checks across objects read of each is kept as it is read (the
//! RBAC index's [`crate::rbac::RoleData`] and [`crate::rbac::BindingData`],
//! an account's [`crate::model::AccountFacts`]); the objects themselves are
//! needed again only for their own checks, which run once every object
//! was read. Until then they wait here, a few hundred bytes of JSON each on
//! disk instead of about a kilobyte each in memory.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;

use crate::model::Resource;

/// Objects written one after the other: each is a kind byte, its length
/// (four bytes, little-endian) and its JSON.
pub struct HeldObjects {
    writer: BufWriter<File>,
    count: usize,
}

/// The kind byte of each kind that can be held.
const ROLE: u8 = 0;
const CLUSTER_ROLE: u8 = 1;
const ROLE_BINDING: u8 = 2;
const CLUSTER_ROLE_BINDING: u8 = 3;
const SERVICE_ACCOUNT: u8 = 4;

impl HeldObjects {
    /// An empty file in the system's temporary directory, removed when
    /// dropped.
    pub fn new() -> io::Result<HeldObjects> {
        Ok(HeldObjects {
            writer: BufWriter::new(tempfile::tempfile()?),
            count: 0,
        })
    }

    /// Whether `resource` is of a kind that can be held.
    pub fn holds(resource: &Resource) -> bool {
        matches!(
            resource,
            Resource::ServiceAccount(_)
                | Resource::Role(_)
                | Resource::ClusterRole(_)
                | Resource::RoleBinding(_)
                | Resource::ClusterRoleBinding(_)
        )
    }

    /// Writes `resource` (of a kind that [`Self::holds`]) to the file.
    pub fn push(&mut self, resource: &Resource) -> io::Result<()> {
        let (kind, json) = match resource {
            Resource::ServiceAccount(o) => (SERVICE_ACCOUNT, serde_json::to_vec(o)),
            Resource::Role(o) => (ROLE, serde_json::to_vec(o)),
            Resource::ClusterRole(o) => (CLUSTER_ROLE, serde_json::to_vec(o)),
            Resource::RoleBinding(o) => (ROLE_BINDING, serde_json::to_vec(o)),
            Resource::ClusterRoleBinding(o) => (CLUSTER_ROLE_BINDING, serde_json::to_vec(o)),
            _ => return Err(io::Error::other("not a kind held on disk")),
        };
        let json = json.map_err(io::Error::other)?;
        let length = u32::try_from(json.len()).map_err(io::Error::other)?;
        self.writer.write_all(&[kind])?;
        self.writer.write_all(&length.to_le_bytes())?;
        self.writer.write_all(&json)?;
        self.count += 1;
        Ok(())
    }

    /// How many objects were written.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The objects back, in the order written.
    pub fn read_back(self) -> io::Result<HeldReader> {
        let mut file = self.writer.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(HeldReader {
            reader: BufReader::new(file),
            left: self.count,
            json: Vec::new(),
        })
    }
}

/// Reads held objects back.
pub struct HeldReader {
    reader: BufReader<File>,
    left: usize,
    json: Vec<u8>,
}

impl HeldReader {
    /// The next `count` objects (fewer at the end; none once all were read).
    pub fn next_chunk(&mut self, count: usize) -> io::Result<Vec<Resource>> {
        let count = count.min(self.left);
        let mut chunk = Vec::with_capacity(count);
        for _ in 0..count {
            chunk.push(self.next_object()?);
            self.left -= 1;
        }
        Ok(chunk)
    }

    fn next_object(&mut self) -> io::Result<Resource> {
        let mut header = [0u8; 5];
        self.reader.read_exact(&mut header)?;
        let [kind, length @ ..] = header;
        let length = usize::try_from(u32::from_le_bytes(length)).map_err(io::Error::other)?;
        self.json.resize(length, 0);
        self.reader.read_exact(&mut self.json)?;
        let json = &self.json;
        match kind {
            SERVICE_ACCOUNT => decode::<ServiceAccount>(json).map(Resource::ServiceAccount),
            ROLE => decode::<Role>(json).map(Resource::Role),
            CLUSTER_ROLE => decode::<ClusterRole>(json).map(Resource::ClusterRole),
            ROLE_BINDING => decode::<RoleBinding>(json).map(Resource::RoleBinding),
            CLUSTER_ROLE_BINDING => {
                decode::<ClusterRoleBinding>(json).map(Resource::ClusterRoleBinding)
            }
            other => Err(io::Error::other(format!("unknown kind byte {other}"))),
        }
    }
}

fn decode<T: DeserializeOwned>(json: &[u8]) -> io::Result<T> {
    serde_json::from_slice(json).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::resources;

    const OBJECTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: api, namespace: shop, labels: {app: api}}
automountServiceAccountToken: false
imagePullSecrets: [{name: pull}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop, labels: {team: a}, annotations: {palisade.dev/ignore: "x"}}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list], resourceNames: ["ü-名"]}
- {nonResourceURLs: ["/metrics"], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agg}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {rbac.example.com/aggregate: "true"}}]
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: ServiceAccount, name: api, namespace: shop}
- {kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: all, creationTimestamp: "2024-01-02T03:04:05Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: agg}
"#;

    #[test]
    fn objects_come_back_as_they_went_in_in_order() {
        let objects = resources(OBJECTS);
        assert_eq!(objects.len(), 5);
        let mut held = HeldObjects::new().unwrap();
        for object in &objects {
            assert!(HeldObjects::holds(object));
            held.push(object).unwrap();
        }
        assert_eq!(held.len(), 5);
        let mut reader = held.read_back().unwrap();
        let mut back = reader.next_chunk(3).unwrap();
        assert_eq!(back.len(), 3);
        back.extend(reader.next_chunk(3).unwrap());
        assert!(reader.next_chunk(3).unwrap().is_empty());
        assert_eq!(format!("{back:?}"), format!("{objects:?}"));
    }

    #[test]
    fn other_kinds_are_not_held() {
        let objects = resources("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n");
        assert!(!HeldObjects::holds(&objects[0]));
        let mut held = HeldObjects::new().unwrap();
        assert!(held.push(&objects[0]).is_err());
        assert!(held.is_empty());
    }
}
