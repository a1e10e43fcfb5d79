//! Palisade: Kubernetes security scanning for workloads and RBAC.
//!
//! One pure engine ([`engine`]) evaluates the normalized objects of [`model`]
//! against the [`checks`] catalog and a [`policy`]; the CLI feeds it manifest
//! files, the operator feeds it the cluster.

pub mod allocator;
pub mod cel;
pub mod checks;
pub mod cli;
pub mod crd;
pub mod drift;
pub mod engine;
pub mod loader;
pub mod model;
pub mod operator;
pub mod output;
pub mod policy;
pub mod posture;
pub mod rbac;
pub mod vap;
