//! `palisade rbac …`: questions about effective permissions, answered from
//! manifest files (`-f`) or a live cluster (kubeconfig).
//!
//! - `can-i VERB TYPE[/NAME] | VERB /URL --as USER [--as-group G]…` mirrors
//!   `kubectl auth can-i` with impersonation: prints `yes` or `no`, exits 0
//!   for yes, 1 for no, 2 on errors.
//! - `who-can VERB TYPE[/NAME]` lists the subjects granted the request, with
//!   the binding, role and rule that grant it.
//! - `permissions --as USER` lists every rule the user holds, with its scope
//!   and provenance.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::index::{Decision, RbacIndex};
use super::request::{Request, SYSTEM_MASTERS, UserInfo};
use super::resources;
use crate::model::Inventory;

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
    /// Subresource, such as `exec`, `log` or `scale`.
    #[arg(long)]
    pub subresource: Option<String>,
    /// Namespace of the request (default: the kubeconfig's, else `default`).
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
        let inventory =
            super::manifests::read_inventory(&source.files).map_err(|errors| errors.join("\n"))?;
        return Ok((inventory, "default".to_owned()));
    }
    let client =
        super::live::client(source.kubeconfig.as_deref(), source.context.as_deref()).await?;
    let namespace = super::live::default_namespace(&client);
    let inventory = super::live::read_inventory(&client).await?;
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
pub fn build_request(
    action: &ActionArgs,
    default_namespace: &str,
) -> Result<(Request, Vec<String>), String> {
    let mut warnings = Vec::new();
    if action.target.starts_with('/') {
        if action.subresource.is_some() {
            return Err("--subresource can not be used with a non-resource URL".to_owned());
        }
        return Ok((
            Request::non_resource(&action.verb, &action.target),
            warnings,
        ));
    }
    let (type_arg, name) = match action.target.split_once('/') {
        Some((t, n)) => (t, n),
        None => (action.target.as_str(), ""),
    };
    let resolved = resources::resolve(type_arg);
    if resolved.namespaced.is_none() {
        warnings.push(format!(
            "warning: resource type `{type_arg}` is not a built-in one; asking for `{}` in group `{}`",
            resolved.resource, resolved.group
        ));
    }
    // A cluster-scoped resource has no namespace in a real request, so only
    // ClusterRoleBindings can grant it; `-n` is ignored for it.
    let namespace = if action.all_namespaces || resolved.namespaced == Some(false) {
        if resolved.namespaced == Some(false) && action.namespace.is_some() {
            warnings.push(format!(
                "warning: resource '{}' is not namespace scoped; asking cluster-wide",
                resolved.resource
            ));
        }
        String::new()
    } else {
        action
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_owned())
    };
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
            if found.origin.role == found.role {
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
    for binding in index.dangling_bindings() {
        let applies = binding
            .subjects
            .iter()
            .filter_map(|s| s.principal(binding.key.namespace.as_deref()))
            .any(|p| match p {
                super::index::Principal::User(name) => name == user.name,
                super::index::Principal::Group(group) => user.in_group(&group),
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
        let (req, warnings) = build_request(
            &action("get", "nodes", None, Some("shop"), false),
            "default",
        )
        .unwrap();
        assert_eq!(req, Request::resource("get", "", "nodes", "", "", ""));
        assert_eq!(warnings.len(), 1);
        let (req, _) =
            build_request(&action("list", "secrets", None, None, true), "default").unwrap();
        assert_eq!(req.namespace(), "");
        let (req, _) =
            build_request(&action("get", "/logs/*", None, None, false), "default").unwrap();
        assert_eq!(req, Request::non_resource("get", "/logs/*"));
        assert!(build_request(&action("get", "/logs", Some("x"), None, false), "default").is_err());
    }
}
