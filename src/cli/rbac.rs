//! `palisade rbac …`: questions about effective permissions, answered from
//! manifest files (`-f`) or a live cluster (kubeconfig).
//!
//! - `can-i VERB TYPE[/NAME] [NAME] | VERB /URL --as USER [--as-group G]…`
//!   mirrors `kubectl auth can-i` with impersonation (the same request
//!   attributes and warnings): prints `yes` or `no`, exits 0 for yes, 1 for
//!   no, 2 on errors.
//! - `who-can VERB TYPE[/NAME] [NAME]` lists the subjects granted the
//!   request, with the binding, role and rule that grant it.
//! - `permissions --as USER` lists every rule the user holds, with its scope
//!   and provenance.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::model::Inventory;
use crate::rbac::index::{Decision, RbacIndex};
use crate::rbac::request::{Request, SYSTEM_MASTERS, UserInfo};
use crate::rbac::resources;

/// `palisade rbac`.
#[derive(Args, Debug)]
pub struct RbacArgs {
    #[command(subcommand)]
    pub command: RbacCommand,
}

#[derive(Subcommand, Debug)]
pub enum RbacCommand {
    /// Check whether a user may do something (like `kubectl auth can-i --as`).
    CanI(CanIArgs),
    /// List the subjects that may do something, and what grants it.
    WhoCan(WhoCanArgs),
    /// List every permission a user holds, with scope and provenance.
    Permissions(PermissionsArgs),
}

/// Where the RBAC objects come from.
#[derive(Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Manifest file or directory (`-` for standard input); repeatable.
    /// Without it, the cluster of the kubeconfig is read.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub files: Vec<String>,
    /// Kubeconfig of the cluster to read (default: `KUBECONFIG`, `~/.kube/config`).
    #[arg(long, value_name = "PATH", conflicts_with = "files")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use.
    #[arg(long, value_name = "NAME", conflicts_with = "files")]
    pub context: Option<String>,
}

/// What is asked: `VERB TYPE[/NAME]` or `VERB /URL`.
#[derive(Args, Debug, Clone)]
pub struct ActionArgs {
    /// A verb such as get, list, create, impersonate, bind, escalate, `*`.
    pub verb: String,
    /// `TYPE`, `TYPE/NAME` (`pods`, `deployments.apps/web`, `*`) or a
    /// non-resource URL (`/logs/*`, `/healthz`).
    pub target: String,
    /// The object's name, as an alternative to `TYPE/NAME`
    /// (`delete namespace shop`).
    pub name: Option<String>,
    /// Subresource, such as `exec`, `log` or `scale`.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Namespace of the request, sent for cluster-scoped resources too, as
    /// kubectl does (default: NAME for `namespaces/NAME`, else the
    /// kubeconfig's, else `default`).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Ask across all namespaces (only cluster-wide grants count).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

/// Who asks.
#[derive(Args, Debug, Clone)]
pub struct IdentityArgs {
    /// Username; `system:serviceaccount:NS:NAME` is that service account.
    #[arg(long = "as", value_name = "USER")]
    pub user: String,
    /// Group; repeatable. Given groups replace a service account's own.
    #[arg(long = "as-group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CanIArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print nothing; only the exit code tells.
    #[arg(short, long)]
    pub quiet: bool,
    /// Also print which binding, role and rule allow it.
    #[arg(long)]
    pub explain: bool,
}

#[derive(Args, Debug)]
pub struct WhoCanArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Args, Debug)]
pub struct PermissionsArgs {
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Exit code for errors (unreadable input, bad arguments, cluster errors).
const EXIT_ERROR: u8 = 2;

/// Runs `palisade rbac …`.
pub async fn run(args: RbacArgs) -> ExitCode {
    let result = match args.command {
        RbacCommand::CanI(a) => can_i(a).await,
        RbacCommand::WhoCan(a) => who_can(a).await,
        RbacCommand::Permissions(a) => permissions(a).await,
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The objects and the namespace `kubectl` would use without `-n`.
async fn load(source: &SourceArgs) -> Result<(Inventory, String), String> {
    if !source.files.is_empty() {
        let inventory = crate::rbac::manifests::read_inventory(&source.files)
            .map_err(|errors| errors.join("\n"))?;
        return Ok((inventory, "default".to_owned()));
    }
    let client = client(source.kubeconfig.as_deref(), source.context.as_deref()).await?;
    let namespace = default_namespace(&client);
    let inventory = read_inventory(&client).await?;
    Ok((inventory, namespace))
}

fn index_of(inventory: &Inventory) -> RbacIndex {
    RbacIndex::build(
        &inventory.roles,
        &inventory.cluster_roles,
        &inventory.role_bindings,
        &inventory.cluster_role_bindings,
    )
}

/// Builds the request the way `kubectl auth can-i` does; warnings (like
/// kubectl's) go to standard error.
///
/// kubectl sends the namespace (`-n`, else the kubeconfig's) with every
/// resource request, cluster-scoped ones included, and warns that the
/// resource is not namespace scoped; the authorizer then also evaluates the
/// RoleBindings of that namespace (`kubectl auth can-i`:
/// `staging/src/k8s.io/kubectl/pkg/cmd/auth/cani.go`). One deliberate
/// difference: for `namespaces/NAME` without `-n` the namespace is `NAME`,
/// as in the real request on that namespace (the API server's request info
/// sets a request's namespace to the name of the namespace it addresses),
/// where kubectl would ask in the kubeconfig's namespace.
pub fn build_request(
    action: &ActionArgs,
    default_namespace: &str,
) -> Result<(Request, Vec<String>), String> {
    let mut warnings = Vec::new();
    if action.target.starts_with('/') {
        if action.subresource.is_some() {
            return Err("--subresource can not be used with a non-resource URL".to_owned());
        }
        if action.name.is_some() {
            return Err("a non-resource URL takes no NAME".to_owned());
        }
        return Ok((
            Request::non_resource(&action.verb, &action.target),
            warnings,
        ));
    }
    let (type_arg, name) = target_type_and_name(action)?;
    let resolved = resources::resolve(type_arg);
    if resolved.namespaced.is_none() {
        warnings.push(format!(
            "warning: resource type `{type_arg}` is not a built-in one; asking for `{}` in group `{}`",
            resolved.resource, resolved.group
        ));
    }
    let namespace = if action.all_namespaces {
        String::new()
    } else if let Some(namespace) = &action.namespace {
        namespace.clone()
    } else if resolved.resource == "namespaces" && resolved.group.is_empty() && !name.is_empty() {
        name.to_owned()
    } else {
        default_namespace.to_owned()
    };
    if resolved.namespaced == Some(false) && !action.all_namespaces {
        warnings.push(not_namespace_scoped_warning(&resolved));
    }
    let request = Request::resource(
        &action.verb,
        &resolved.group,
        &resolved.resource,
        action.subresource.as_deref().unwrap_or(""),
        name,
        &namespace,
    );
    Ok((request, warnings))
}

/// `TYPE` and the name from `TYPE/NAME` or the separate NAME argument.
fn target_type_and_name(action: &ActionArgs) -> Result<(&str, &str), String> {
    match (action.target.split_once('/'), action.name.as_deref()) {
        (Some(_), Some(_)) => Err(format!(
            "give the name either as `{}` or as a separate argument, not both",
            action.target
        )),
        (Some((type_arg, name)), None) => Ok((type_arg, name)),
        (None, name) => Ok((action.target.as_str(), name.unwrap_or(""))),
    }
}

/// kubectl's warning, word for word (its warning printer adds `Warning: `).
fn not_namespace_scoped_warning(resolved: &resources::ResourceType) -> String {
    if resolved.group.is_empty() {
        format!(
            "Warning: resource '{}' is not namespace scoped\n",
            resolved.resource
        )
    } else {
        format!(
            "Warning: resource '{}' is not namespace scoped in group '{}'\n",
            resolved.resource, resolved.group
        )
    }
}

fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("{w}");
    }
}

async fn can_i(args: CanIArgs) -> Result<ExitCode, String> {
    let (inventory, default_ns) = load(&args.source).await?;
    let (request, warnings) = build_request(&args.action, &default_ns)?;
    print_warnings(&warnings);
    let user = UserInfo::impersonated(&args.identity.user, &args.identity.groups);
    let decision = index_of(&inventory).authorize(&user, &request);
    let mut out = std::io::stdout().lock();
    if !args.quiet {
        let answer = if decision.is_allowed() { "yes" } else { "no" };
        writeln!(out, "{answer}").map_err(|e| e.to_string())?;
        if args.explain {
            match &decision {
                Decision::AllowedPrivilegedGroup => {
                    writeln!(
                        out,
                        "allowed: {user} is in group {SYSTEM_MASTERS}, which bypasses RBAC"
                    )
                }
                Decision::Allowed(p) => writeln!(out, "allowed by {p}"),
                Decision::Denied => {
                    writeln!(out, "no rule of any binding of {user} allows {request}")
                }
            }
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn who_can(args: WhoCanArgs) -> Result<ExitCode, String> {
    let (inventory, default_ns) = load(&args.source).await?;
    let (request, warnings) = build_request(&args.action, &default_ns)?;
    print_warnings(&warnings);
    let index = index_of(&inventory);
    let mut rows = vec![[
        "SUBJECT".to_owned(),
        "BINDING".to_owned(),
        "ROLE".to_owned(),
        "RULE".to_owned(),
    ]];
    for found in index.who_can(&request) {
        rows.push([
            found.subject,
            found.binding.to_string(),
            found.role.to_string(),
            if *found.origin.role == found.role {
                format!("rules[{}]", found.origin.index)
            } else {
                format!("from {}", found.origin)
            },
        ]);
    }
    rows.push([
        format!("Group {SYSTEM_MASTERS}"),
        "(bypasses RBAC)".to_owned(),
        String::new(),
        String::new(),
    ]);
    let mut out = std::io::stdout().lock();
    writeln!(out, "who can {request}:").map_err(|e| e.to_string())?;
    write_table(&mut out, &rows).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

async fn permissions(args: PermissionsArgs) -> Result<ExitCode, String> {
    let (inventory, _) = load(&args.source).await?;
    let user = UserInfo::impersonated(&args.identity.user, &args.identity.groups);
    let index = index_of(&inventory);
    let mut out = std::io::stdout().lock();
    writeln!(out, "permissions of {user}:").map_err(|e| e.to_string())?;
    if user.in_group(SYSTEM_MASTERS) {
        writeln!(
            out,
            "every request is allowed: group {SYSTEM_MASTERS} bypasses RBAC"
        )
        .map_err(|e| e.to_string())?;
    }
    let mut rows = vec![[
        "SCOPE".to_owned(),
        "BINDING".to_owned(),
        "ROLE".to_owned(),
        "RULE".to_owned(),
    ]];
    for grant in index.grants_for(&user) {
        let scope = match grant.scope() {
            None => "cluster-wide".to_owned(),
            Some(ns) => format!("namespace {ns}"),
        };
        for sourced in grant.rules {
            let origin = if sourced.origin.role == grant.role.key {
                format!("rules[{}]", sourced.origin.index)
            } else {
                format!("from {}", sourced.origin)
            };
            rows.push([
                scope.clone(),
                grant.binding.key.to_string(),
                format!("{} {origin}", grant.role.key),
                sourced.rule.describe(),
            ]);
        }
    }
    write_table(&mut out, &rows).map_err(|e| e.to_string())?;
    for note in cluster_scoped_notes(&index, &user) {
        writeln!(out, "{note}").map_err(|e| e.to_string())?;
    }
    for binding in index.dangling_bindings() {
        let applies = binding
            .subjects
            .iter()
            .filter_map(|s| s.principal(binding.key.namespace.as_deref()))
            .any(|p| match p {
                crate::rbac::index::Principal::User(name) => name == user.name,
                crate::rbac::index::Principal::Group(group) => user.in_group(&group),
            });
        if applies {
            writeln!(
                out,
                "note: {} refers to missing {} {}: it grants nothing until that role exists",
                binding.key, binding.role_ref.kind, binding.role_ref.name
            )
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a RoleBinding's rules on cluster-scoped resources grant: real
/// requests for them carry no namespace, except a request on the
/// binding's own namespace and the `bind` check of a binding written there.
fn cluster_scoped_notes(index: &RbacIndex, user: &UserInfo) -> Vec<String> {
    let mut notes = Vec::new();
    for grant in index.grants_for(user) {
        let Some(namespace) = grant.scope() else {
            continue;
        };
        for sourced in grant.rules {
            let cluster_scoped: Vec<&str> = sourced
                .rule
                .resources
                .iter()
                .map(String::as_str)
                .filter(|r| {
                    let base = r.split_once('/').map_or(*r, |(base, _)| base);
                    resources::resolve(base).namespaced == Some(false)
                })
                .collect();
            if cluster_scoped.is_empty() {
                continue;
            }
            notes.push(format!(
                "note: {} {} names cluster-scoped {}: in namespace {namespace} it grants only \
                 namespace {namespace} itself (`namespaces`), `bind` for bindings written in \
                 {namespace}, and SubjectAccessReviews that ask in {namespace}",
                grant.binding.key,
                sourced.origin,
                cluster_scoped.join(", ")
            ));
        }
    }
    notes
}

fn write_table(out: &mut impl Write, rows: &[[String; 4]]) -> std::io::Result<()> {
    let mut widths = [0usize; 4];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

// RBAC objects from a live cluster: Roles, ClusterRoles, RoleBindings,
// ClusterRoleBindings and ServiceAccounts, nothing else.

/// A client from `--kubeconfig PATH`, or the usual defaults (`KUBECONFIG`,
/// `~/.kube/config`, in-cluster).
pub async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file =
                Kubeconfig::read_from(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let options = KubeConfigOptions {
                context: context.map(str::to_owned),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => {
            let options = KubeConfigOptions {
                context: context.map(str::to_owned),
                ..KubeConfigOptions::default()
            };
            match Config::from_kubeconfig(&options).await {
                Ok(config) => config,
                Err(_) if context.is_none() => Config::infer().await.map_err(|e| e.to_string())?,
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    Client::try_from(config).map_err(|e| e.to_string())
}

/// The namespace of the kubeconfig's current context (`default` without one),
/// as `kubectl` uses it when `-n` is not given.
pub fn default_namespace(client: &Client) -> String {
    client.default_namespace().to_owned()
}

/// Every RBAC object and ServiceAccount of the cluster.
pub async fn read_inventory(client: &Client) -> Result<Inventory, String> {
    let lp = ListParams::default();
    let err = |what: &str, e: kube::Error| format!("listing {what}: {e}");
    let mut inventory = Inventory {
        roles: Api::<Role>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("roles", e))?
            .items,
        cluster_roles: Api::<ClusterRole>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("clusterroles", e))?
            .items,
        role_bindings: Api::<RoleBinding>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("rolebindings", e))?
            .items,
        cluster_role_bindings: Api::<ClusterRoleBinding>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("clusterrolebindings", e))?
            .items,
        ..Inventory::default()
    };
    inventory.service_accounts = Api::<ServiceAccount>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| err("serviceaccounts", e))?
        .items;
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(
        verb: &str,
        target: &str,
        sub: Option<&str>,
        ns: Option<&str>,
        all: bool,
    ) -> ActionArgs {
        ActionArgs {
            verb: verb.to_owned(),
            target: target.to_owned(),
            name: None,
            subresource: sub.map(str::to_owned),
            namespace: ns.map(str::to_owned),
            all_namespaces: all,
        }
    }

    #[test]
    fn builds_requests_like_kubectl() {
        let (req, _) = build_request(
            &action("create", "pods", Some("exec"), Some("shop"), false),
            "default",
        )
        .unwrap();
        assert_eq!(
            req,
            Request::resource("create", "", "pods", "exec", "", "shop")
        );
        let (req, _) = build_request(
            &action("get", "deployments.apps/web", None, None, false),
            "dev",
        )
        .unwrap();
        assert_eq!(
            req,
            Request::resource("get", "apps", "deployments", "", "web", "dev")
        );
        let (req, _) =
            build_request(&action("list", "secrets", None, None, true), "default").unwrap();
        assert_eq!(req.namespace(), "");
        let (req, _) =
            build_request(&action("get", "/logs/*", None, None, false), "default").unwrap();
        assert_eq!(req, Request::non_resource("get", "/logs/*"));
        assert!(build_request(&action("get", "/logs", Some("x"), None, false), "default").is_err());
    }

    #[test]
    fn cluster_scoped_resources_keep_the_namespace_and_warn_like_kubectl() {
        let (req, warnings) = build_request(
            &action("get", "nodes", Some("proxy"), Some("shop"), false),
            "default",
        )
        .unwrap();
        assert_eq!(
            req,
            Request::resource("get", "", "nodes", "proxy", "", "shop")
        );
        assert_eq!(
            warnings,
            ["Warning: resource 'nodes' is not namespace scoped\n"]
        );
        // Without `-n`, the default namespace is sent, as kubectl sends the
        // kubeconfig's.
        let (req, warnings) = build_request(
            &action("bind", "clusterroles/edit", None, None, false),
            "dev",
        )
        .unwrap();
        assert_eq!(
            req,
            Request::resource(
                "bind",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "edit",
                "dev"
            )
        );
        assert_eq!(
            warnings,
            [
                "Warning: resource 'clusterroles' is not namespace scoped in group 'rbac.authorization.k8s.io'\n"
            ]
        );
        // Across all namespaces there is no namespace and no warning.
        let (req, warnings) =
            build_request(&action("get", "nodes", None, None, true), "dev").unwrap();
        assert_eq!(req, Request::resource("get", "", "nodes", "", "", ""));
        assert!(warnings.is_empty());
        // A namespaced resource gets no warning.
        let (_, warnings) =
            build_request(&action("get", "pods", None, None, false), "dev").unwrap();
        assert!(warnings.is_empty());
    }

    #[test]
    fn a_namespace_by_name_is_asked_in_itself() {
        let (req, _) = build_request(
            &action("delete", "namespaces/shop", None, None, false),
            "default",
        )
        .unwrap();
        assert_eq!(
            req,
            Request::resource("delete", "", "namespaces", "", "shop", "shop")
        );
        // `-n` wins, as with kubectl.
        let (req, _) = build_request(
            &action("delete", "ns/shop", None, Some("other"), false),
            "default",
        )
        .unwrap();
        assert_eq!(req.namespace(), "other");
        // Without a name, the default namespace, as kubectl.
        let (req, _) =
            build_request(&action("create", "namespaces", None, None, false), "dev").unwrap();
        assert_eq!(
            req,
            Request::resource("create", "", "namespaces", "", "", "dev")
        );
    }

    #[test]
    fn the_name_may_be_a_separate_argument() {
        let mut separate = action("delete", "namespace", None, None, false);
        separate.name = Some("shop".to_owned());
        let (req, _) = build_request(&separate, "default").unwrap();
        assert_eq!(
            req,
            Request::resource("delete", "", "namespaces", "", "shop", "shop")
        );
        let mut both = action("delete", "namespace/shop", None, None, false);
        both.name = Some("shop".to_owned());
        assert!(build_request(&both, "default").is_err());
        let mut url = action("get", "/healthz", None, None, false);
        url.name = Some("x".to_owned());
        assert!(build_request(&url, "default").is_err());
    }

    #[test]
    fn permissions_note_what_a_role_binding_grants_on_cluster_scoped_resources() {
        let inventory = Inventory::from_resources(&crate::checks::testing::resources(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ops}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get]}
- {apiGroups: [""], resources: [nodes/proxy, namespaces], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ops, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ops}
subjects: [{kind: User, name: alice}]
"#,
        ));
        let index = index_of(&inventory);
        let notes = cluster_scoped_notes(&index, &UserInfo::impersonated("alice", &[]));
        assert_eq!(
            notes,
            [
                "note: RoleBinding shop/ops ClusterRole ops rules[1] names cluster-scoped \
              nodes/proxy, namespaces: in namespace shop it grants only namespace shop itself \
              (`namespaces`), `bind` for bindings written in shop, and SubjectAccessReviews \
              that ask in shop"
            ]
        );
        assert!(cluster_scoped_notes(&index, &UserInfo::impersonated("bob", &[])).is_empty());
    }
}
