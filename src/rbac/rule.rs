//! One RBAC policy rule and the API server's matching of a request against it
//! (`pkg/apis/rbac/v1/evaluation_helpers.go` and `RuleAllows` of the RBAC
//! authorizer), reproduced exactly.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::request::{Request, ResourceRequest};

/// `*` in verbs, apiGroups, resources and nonResourceURLs.
pub const ALL: &str = "*";

/// A policy rule with absent lists read as empty, as the API server reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

impl From<&PolicyRule> for Rule {
    fn from(rule: &PolicyRule) -> Self {
        Rule {
            verbs: rule.verbs.clone(),
            api_groups: rule.api_groups.clone().unwrap_or_default(),
            resources: rule.resources.clone().unwrap_or_default(),
            resource_names: rule.resource_names.clone().unwrap_or_default(),
            non_resource_urls: rule.non_resource_urls.clone().unwrap_or_default(),
        }
    }
}

/// Rules already read, each kept once: the roles of a large cluster
/// repeat a few rules (read ConfigMaps, watch Pods) thousands of times.
#[derive(Debug, Default)]
pub struct SharedRules(HashSet<Arc<Rule>>);

impl SharedRules {
    /// The one copy of `rule`.
    pub fn share(&mut self, rule: Rule) -> Arc<Rule> {
        if let Some(shared) = self.0.get(&rule) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(rule);
        self.0.insert(Arc::clone(&shared));
        shared
    }
}

impl Rule {
    /// Convenience constructor for tests and synthesized bootstrap roles.
    pub fn resource(verbs: &[&str], api_groups: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: strings(verbs),
            api_groups: strings(api_groups),
            resources: strings(resources),
            ..Rule::default()
        }
    }

    /// A rule on non-resource URLs.
    pub fn non_resource(verbs: &[&str], urls: &[&str]) -> Rule {
        Rule {
            verbs: strings(verbs),
            non_resource_urls: strings(urls),
            ..Rule::default()
        }
    }

    pub fn with_names(mut self, names: &[&str]) -> Rule {
        self.resource_names = strings(names);
        self
    }

    /// Whether this rule allows the request (`RuleAllows`).
    pub fn allows(&self, request: &Request) -> bool {
        match request {
            Request::Resource(r) => self.allows_resource(r),
            Request::NonResource { verb, path } => {
                self.verb_matches(verb) && self.non_resource_url_matches(path)
            }
        }
    }

    fn allows_resource(&self, r: &ResourceRequest) -> bool {
        self.verb_matches(&r.verb)
            && self.api_group_matches(&r.api_group)
            && self.resource_matches(&r.resource, &r.subresource)
            && self.resource_name_matches(&r.name)
    }

    /// Whether the rule could allow `verb` on the resource, for some name:
    /// its verbs, API groups and resources match (`resourceNames` aside).
    pub fn could_allow(&self, verb: &str, group: &str, resource: &str, sub: &str) -> bool {
        self.verb_matches(verb)
            && self.api_group_matches(group)
            && self.resource_matches(resource, sub)
    }

    /// `VerbMatches`: `*` or the exact verb.
    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == ALL || v == verb)
    }

    /// `APIGroupMatches`: `*` or the exact group; `""` is the core group only.
    pub fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == ALL || g == group)
    }

    /// `ResourceMatches`: `*`, the exact `resource` or `resource/subresource`,
    /// or `*/subresource`. `pods` does not cover `pods/exec`, and there is no
    /// `pods/*` form.
    pub fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|rule_resource| {
            if rule_resource == ALL {
                return true;
            }
            if subresource.is_empty() {
                return rule_resource == resource;
            }
            // `resource/subresource`, or `*/subresource` (the Go code's length,
            // prefix and suffix test is exactly this equality).
            let combined = rule_resource
                .strip_prefix(resource)
                .and_then(|rest| rest.strip_prefix('/'));
            combined == Some(subresource) || rule_resource.strip_prefix("*/") == Some(subresource)
        })
    }

    /// `ResourceNameMatches`: an empty list allows every name (and requests
    /// without a name); otherwise the exact name is required, so `create`,
    /// `list` and `deletecollection` requests (no name) never match.
    pub fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    /// `NonResourceURLMatches`: `*`, the exact path, or a trailing-`*` prefix.
    pub fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|url| {
            url == ALL
                || url == path
                || (url.ends_with('*') && path.starts_with(url.trim_end_matches('*')))
        })
    }

    /// Compact description, like `kubectl describe role` shows a rule.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("apiGroups={}", list(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("resources={}", list(&self.resources)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("resourceNames={}", list(&self.resource_names)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("nonResourceURLs={}", list(&self.non_resource_urls)));
        }
        parts.push(format!("verbs={}", list(&self.verbs)));
        parts.join(" ")
    }
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(","))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_rules_are_kept_once() {
        let mut shared = SharedRules::default();
        let read = || Rule::resource(&["get", "list"], &[""], &["configmaps"]);
        let first = shared.share(read());
        let again = shared.share(read());
        assert!(Arc::ptr_eq(&first, &again));
        // Any field apart makes another rule.
        let named = shared.share(read().with_names(&["app"]));
        let urls = shared.share(Rule::non_resource(&["get", "list"], &["configmaps"]));
        for other in [&named, &urls] {
            assert!(!Arc::ptr_eq(&first, other));
        }
        assert_eq!(*named, read().with_names(&["app"]));
        assert_eq!(shared.0.len(), 3);
    }

    fn get(group: &str, resource: &str, sub: &str, name: &str) -> Request {
        Request::resource("get", group, resource, sub, name, "ns")
    }

    #[test]
    fn verbs_match_star_or_exact() {
        let rule = Rule::resource(&["get"], &[""], &["pods"]);
        assert!(rule.allows(&get("", "pods", "", "")));
        assert!(!rule.allows(&Request::resource("list", "", "pods", "", "", "ns")));
        let star = Rule::resource(&["*"], &[""], &["pods"]);
        assert!(star.allows(&Request::resource("escalate", "", "pods", "", "", "ns")));
        // Verbs are case-sensitive.
        let upper = Rule::resource(&["GET"], &[""], &["pods"]);
        assert!(!upper.allows(&get("", "pods", "", "")));
    }

    #[test]
    fn core_group_is_empty_string_only() {
        let core = Rule::resource(&["get"], &[""], &["deployments"]);
        assert!(!core.allows(&get("apps", "deployments", "", "")));
        let apps = Rule::resource(&["get"], &["apps"], &["deployments"]);
        assert!(!apps.allows(&get("", "deployments", "", "")));
        let any = Rule::resource(&["get"], &["*"], &["deployments"]);
        assert!(any.allows(&get("apps", "deployments", "", "")));
        assert!(any.allows(&get("", "deployments", "", "")));
        // No apiGroups at all matches nothing.
        let none = Rule::resource(&["get"], &[], &["pods"]);
        assert!(!none.allows(&get("", "pods", "", "")));
    }

    #[test]
    fn resources_do_not_cover_their_subresources() {
        let pods = Rule::resource(&["*"], &[""], &["pods"]);
        assert!(pods.allows(&get("", "pods", "", "")));
        assert!(!pods.allows(&get("", "pods", "exec", "")));
        let exec = Rule::resource(&["*"], &[""], &["pods/exec"]);
        assert!(exec.allows(&get("", "pods", "exec", "")));
        assert!(!exec.allows(&get("", "pods", "", "")));
        assert!(!exec.allows(&get("", "pods", "attach", "")));
    }

    #[test]
    fn star_slash_subresource_matches_any_resource() {
        let status = Rule::resource(&["get"], &["*"], &["*/status"]);
        assert!(status.allows(&get("apps", "deployments", "status", "")));
        assert!(status.allows(&get("", "pods", "status", "")));
        assert!(!status.allows(&get("", "pods", "", "")));
        assert!(!status.allows(&get("", "pods", "xstatus", "")));
        // `*/status` is only a pattern for a subresource, not a resource.
        assert!(!status.allows(&get("", "status", "", "")));
        // There is no `pods/*` form: it matches only the literal subresource `*`.
        let pods_any = Rule::resource(&["get"], &[""], &["pods/*"]);
        assert!(!pods_any.allows(&get("", "pods", "exec", "")));
        assert!(pods_any.allows(&get("", "pods", "*", "")));
        // `*` covers subresources.
        let all = Rule::resource(&["get"], &[""], &["*"]);
        assert!(all.allows(&get("", "pods", "exec", "")));
    }

    #[test]
    fn suffix_match_of_star_form_is_exact_length() {
        // `*/ec` has the length of `*/` + `ec` and ends with `ec`.
        let rule = Rule::resource(&["get"], &[""], &["*/ec"]);
        assert!(rule.allows(&get("", "pods", "ec", "")));
        assert!(!rule.allows(&get("", "pods", "exec", "")));
    }

    #[test]
    fn resource_names_restrict_named_requests_only() {
        let named =
            Rule::resource(&["get", "list", "create"], &[""], &["secrets"]).with_names(&["a"]);
        assert!(named.allows(&get("", "secrets", "", "a")));
        assert!(!named.allows(&get("", "secrets", "", "b")));
        // A request without a name (create, list, deletecollection) never
        // matches a name-restricted rule.
        assert!(!named.allows(&Request::resource("list", "", "secrets", "", "", "ns")));
        assert!(!named.allows(&Request::resource("create", "", "secrets", "", "", "ns")));
        let unnamed = Rule::resource(&["get"], &[""], &["secrets"]);
        assert!(unnamed.allows(&get("", "secrets", "", "anything")));
        assert!(unnamed.allows(&get("", "secrets", "", "")));
    }

    #[test]
    fn non_resource_urls() {
        let rule = Rule::non_resource(&["get"], &["/healthz", "/logs/*", "/api*"]);
        let req = |path: &str| Request::non_resource("get", path);
        assert!(rule.allows(&req("/healthz")));
        assert!(!rule.allows(&req("/healthz/ping")));
        assert!(rule.allows(&req("/logs/")));
        assert!(rule.allows(&req("/logs/kube.log")));
        assert!(!rule.allows(&req("/logs")));
        assert!(rule.allows(&req("/api")));
        assert!(rule.allows(&req("/apis/apps")));
        assert!(!rule.allows(&Request::non_resource("post", "/healthz")));
        let all = Rule::non_resource(&["*"], &["*"]);
        assert!(all.allows(&req("/anything")));
        // `**` trims every trailing star: a prefix of `/x`.
        let stars = Rule::non_resource(&["get"], &["/x**"]);
        assert!(stars.allows(&req("/xyz")));
    }

    #[test]
    fn resource_rules_never_match_non_resource_requests_and_back() {
        let resource = Rule::resource(&["*"], &["*"], &["*"]);
        assert!(!resource.allows(&Request::non_resource("get", "/healthz")));
        let urls = Rule::non_resource(&["*"], &["*"]);
        assert!(!urls.allows(&get("", "pods", "", "")));
    }
}
