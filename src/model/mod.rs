//! The normalized objects the engine evaluates.
//!
//! Both front ends build the same model: the loader from manifest files, the
//! operator from its watch caches. The engine never sees raw documents.

mod calico_selector;
mod cni_policy;
mod facts;
mod inventory;
pub mod kinds;
mod network_policy;
mod object;
mod path;
mod resource;
mod retired;
mod selector;
mod severity;
mod volume;
mod workload;

pub use calico_selector::{CalicoSelector, SelectorError};
pub use cni_policy::{CalicoPolicy, CiliumPolicy, CiliumRule, Endpoint};
pub use facts::{AccountFacts, WorkloadFacts};
pub use inventory::{AccountRef, Inventory, InventoryIndex, KubernetesVersion};
pub use kinds::{KindTable, WorkloadKind};
pub use network_policy::{Directions, NetworkPolicyFacts, NetworkPolicyRef};
pub use object::ObjectRef;
pub use path::FieldPath;
pub use resource::{CustomWorkload, DecodeError, PathSegment, Resource};
pub use retired::{RETIRED_APIS, RetiredApi, RetiredObject, retired_api};
pub use selector::selector_matches;
pub use severity::{Severity, UnknownSeverity};
pub use volume::VolumeEntry;
pub use workload::{ContainerEntry, ContainerKind, Workload};
