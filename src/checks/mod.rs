//! The built-in checks, one file per category. Each category module exports
//! `CHECKS`; the catalog is their union, sorted by id.

pub mod api_versions;
mod credential_shapes;
pub mod hardening;
pub mod images;
pub mod namespaces;
mod pod_security;
pub mod pss_baseline;
pub mod pss_restricted;
pub mod rbac;
pub mod reliability;
pub mod secrets;
pub mod service_accounts;

#[cfg(test)]
pub(crate) mod testing;

use std::sync::OnceLock;

use crate::engine::Check;

/// Every built-in check, sorted by id.
pub fn catalog() -> &'static [&'static Check] {
    static CATALOG: OnceLock<Vec<&'static Check>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let categories: &[&[&'static Check]] = &[
            pss_baseline::CHECKS,
            pss_restricted::CHECKS,
            hardening::CHECKS,
            reliability::CHECKS,
            images::CHECKS,
            secrets::CHECKS,
            service_accounts::CHECKS,
            namespaces::CHECKS,
            rbac::CHECKS,
            api_versions::CHECKS,
        ];
        let mut all: Vec<&'static Check> =
            categories.iter().flat_map(|c| c.iter().copied()).collect();
        all.sort_by_key(|c| c.id);
        all
    })
}

/// Looks a check up by id or alias.
pub fn find(pattern: &str) -> Option<&'static Check> {
    catalog()
        .iter()
        .copied()
        .find(|c| crate::policy::names_check(pattern, c))
}
