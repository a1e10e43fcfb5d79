//! What is asked of the authorizer: who (a user with groups) and what (the
//! request attributes of a resource or non-resource request).

use std::fmt;

/// Username prefix of service accounts: `system:serviceaccount:NS:NAME`.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
/// Every service account is in this group.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Every authenticated user (service accounts included) is in this group.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Requests without credentials are in this group.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user of requests without credentials.
pub const ANONYMOUS: &str = "system:anonymous";
/// Members bypass authorization entirely (the API server's privileged-group
/// authorizer runs before RBAC).
pub const SYSTEM_MASTERS: &str = "system:masters";

/// An authenticated identity as the authorizer sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    /// A service account as its token authenticates: its username and the
    /// groups `system:serviceaccounts`, `system:serviceaccounts:NS` and
    /// `system:authenticated`.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: service_account_username(namespace, name),
            groups: service_account_groups(namespace),
        }
    }

    /// The user the API server builds for `kubectl --as NAME [--as-group G]…`
    /// (the impersonation filter): a service account username without
    /// explicit groups gets the account's groups; every user except
    /// `system:anonymous` is added to `system:authenticated` unless
    /// `system:authenticated` or `system:unauthenticated` is already there;
    /// `system:anonymous` gets `system:unauthenticated`.
    pub fn impersonated(name: &str, groups: &[String]) -> UserInfo {
        let mut all: Vec<String> = groups.to_vec();
        if groups.is_empty()
            && let Some((namespace, _)) = split_service_account_username(name)
        {
            all = vec![
                ALL_SERVICE_ACCOUNTS.to_owned(),
                format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
            ];
        }
        if name == ANONYMOUS {
            if !all.iter().any(|g| g == ALL_UNAUTHENTICATED) {
                all.push(ALL_UNAUTHENTICATED.to_owned());
            }
        } else if !all
            .iter()
            .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
        {
            all.push(ALL_AUTHENTICATED.to_owned());
        }
        UserInfo {
            name: name.to_owned(),
            groups: all,
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `(namespace, name)` when this is a service account username.
    pub fn service_account_parts(&self) -> Option<(&str, &str)> {
        split_service_account_username(&self.name)
    }
}

impl fmt::Display for UserInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.groups.is_empty() {
            write!(f, " (groups {})", self.groups.join(", "))?;
        }
        Ok(())
    }
}

pub fn service_account_username(namespace: &str, name: &str) -> String {
    // Made to its length: the RBAC index keeps one per account bound, and
    // `format!` would leave a third of it unused.
    let parts = [SERVICE_ACCOUNT_PREFIX, namespace, ":", name];
    let mut username = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|part| username.push_str(part));
    username
}

fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS.to_owned(),
        format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
        ALL_AUTHENTICATED.to_owned(),
    ]
}

/// `serviceaccount.SplitUsername`: `system:serviceaccount:NS:NAME` with both
/// parts non-empty and no further `:`.
pub fn split_service_account_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((namespace, name))
}

/// A resource request's attributes (`authorizer.Attributes`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceRequest {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Empty for cluster-scoped resources and requests across all namespaces.
    pub namespace: String,
}

/// What the authorizer is asked about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Request {
    Resource(ResourceRequest),
    NonResource { verb: String, path: String },
}

impl Request {
    pub fn resource(
        verb: &str,
        api_group: &str,
        resource: &str,
        subresource: &str,
        name: &str,
        namespace: &str,
    ) -> Request {
        Request::Resource(ResourceRequest {
            verb: verb.to_owned(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        })
    }

    pub fn non_resource(verb: &str, path: &str) -> Request {
        Request::NonResource {
            verb: verb.to_owned(),
            path: path.to_owned(),
        }
    }

    /// The request's namespace; non-resource requests have none.
    pub fn namespace(&self) -> &str {
        match self {
            Request::Resource(r) => &r.namespace,
            Request::NonResource { .. } => "",
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::NonResource { verb, path } => write!(f, "{verb} {path}"),
            Request::Resource(r) => {
                write!(f, "{} {}", r.verb, r.resource)?;
                if !r.subresource.is_empty() {
                    write!(f, "/{}", r.subresource)?;
                }
                if !r.api_group.is_empty() {
                    write!(f, ".{}", r.api_group)?;
                }
                if !r.name.is_empty() {
                    write!(f, " named {}", r.name)?;
                }
                if r.namespace.is_empty() {
                    write!(f, " cluster-wide")
                } else {
                    write!(f, " in namespace {}", r.namespace)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_identity_has_its_implicit_groups() {
        let sa = UserInfo::service_account("shop", "api");
        assert_eq!(sa.name, "system:serviceaccount:shop:api");
        assert_eq!(
            sa.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:shop",
                "system:authenticated"
            ]
        );
        assert_eq!(sa.service_account_parts(), Some(("shop", "api")));
    }

    #[test]
    fn impersonation_adds_groups_like_the_api_server() {
        let user = UserInfo::impersonated("alice", &[]);
        assert_eq!(user.groups, ["system:authenticated"]);
        let sa = UserInfo::impersonated("system:serviceaccount:ns:sa", &[]);
        assert_eq!(
            sa.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
        // Explicit groups replace the account's implicit ones.
        let sa = UserInfo::impersonated("system:serviceaccount:ns:sa", &["dev".to_owned()]);
        assert_eq!(sa.groups, ["dev", "system:authenticated"]);
        let anon = UserInfo::impersonated("system:anonymous", &[]);
        assert_eq!(anon.groups, ["system:unauthenticated"]);
        let explicit = UserInfo::impersonated("bob", &["system:unauthenticated".to_owned()]);
        assert_eq!(explicit.groups, ["system:unauthenticated"]);
    }

    #[test]
    fn split_service_account_usernames() {
        assert_eq!(
            split_service_account_username("system:serviceaccount:a:b"),
            Some(("a", "b"))
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount:a"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount::b"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount:a:b:c"),
            None
        );
        assert_eq!(split_service_account_username("alice"), None);
    }
}
