//! RBAC analysis: what the API server's authorizer would allow, exactly.
//!
//! - [`rule`] and [`request`]: the authorizer's matching of request
//!   attributes against policy rules, and who asks (users, groups, service
//!   accounts, impersonation).
//! - [`index`]: the RBAC objects indexed by subject and role, the
//!   authorizer's decision with its provenance, `who-can`, effective grants,
//!   and incremental updates on each watch event.
//! - [`aggregation`]: ClusterRole aggregation, recomputed from selectors.
//! - [`bootstrap`] and [`default_policy`]: the default policy's objects
//!   (recognised for noise control when they are the real ones, flagged
//!   when they only claim to be; stood in for when manifests bind to them).
//! - [`effective`]: every service account's grants, refreshed per change.
//! - [`risk`] and [`analysis`]: dangerous permissions and attack paths to
//!   cluster admin, per service account.
//! - [`manifests`]: the RBAC objects of manifest files, for
//!   `palisade rbac` (whose command front end, with its live-cluster client,
//!   is `crate::cli::rbac`).
//!
//! Everything here is pure: no client, no clock.

pub mod accounts;
pub mod aggregation;
pub mod analysis;
pub mod bootstrap;
pub mod default_policy;
pub mod effective;
pub mod index;
pub mod manifests;
pub mod request;
pub mod resources;
pub mod risk;
pub mod rule;

pub use analysis::{AccountPermission, RbacAnalysis};
pub use effective::{AccountGrant, EffectivePermissions};
pub use index::{
    Affected, BindingData, BindingKey, Change, Decision, Principal, Provenance, RbacData,
    RbacIndex, RoleData, RoleKey,
};
pub use request::{Request, ResourceRequest, UserInfo};
pub use rule::Rule;
