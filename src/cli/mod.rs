//! The command front ends: `Cli` and its `Command` enum, one variant per
//! subcommand, and one file per subcommand holding its flags and the code
//! that runs it (reading files or a cluster, writing stdout, exit codes).
//! Everything they call below them is pure.
//!
//! - [`scan`]: `palisade scan`, manifests in, a report and an exit status out.
//! - [`checks`]: `palisade checks`, the catalog.
//! - [`rbac`]: `palisade rbac can-i | who-can | permissions`, from manifests
//!   or a live cluster (the kube client lives here, not in `crate::rbac`).
//! - [`drift`]: `palisade drift`, the repository's manifests against the live
//!   cluster or the operator's reports.
//! - [`operator`]: the flags of `palisade operator`; `crate::operator` runs it.
//! - [`crds`]: `palisade crds`.
//! - [`docs`]: the hidden `palisade docs`, behind scripts/gen-docs.sh.

pub mod checks;
pub mod crds;
pub mod docs;
pub mod drift;
pub mod held;
pub mod operator;
pub mod rbac;
pub mod scan;
pub mod stream;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "palisade", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan manifest files for security risks (for CI and pre-commit).
    Scan(scan::ScanArgs),
    /// List the checks Palisade runs.
    Checks(checks::ChecksArgs),
    /// RBAC analysis: can-i, who-can and effective permissions, from
    /// manifests or a live cluster.
    Rbac(rbac::RbacArgs),
    /// GitOps drift: findings and objects the live cluster has that the
    /// repository's manifests do not, and the other way round.
    Drift(drift::DriftArgs),
    /// Watch the cluster and keep ScanReports up to date.
    Operator(operator::OperatorArgs),
    /// Print Palisade's CustomResourceDefinitions as YAML.
    Crds,
    /// Regenerate the generated sections of the documentation
    /// (scripts/gen-docs.sh).
    #[command(hide = true)]
    Docs(docs::DocsArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan(args) => scan::run(&args),
        Command::Checks(args) => checks::run(&args),
        Command::Rbac(args) => block_on(rbac::run(args)),
        Command::Drift(args) => block_on(drift::run(args)),
        Command::Operator(args) => {
            crate::allocator::use_system_allocator();
            crate::operator::limit_malloc_arenas();
            match block_on(crate::operator::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Crds => crds::run(),
        Command::Docs(args) => docs::run(&args),
    }
}

/// Runs an async command on a multi-threaded runtime; only the commands that
/// talk to an API server need one.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(future)
}
