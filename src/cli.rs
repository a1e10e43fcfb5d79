//! The command line: one enum variant per subcommand, each handed to the
//! module that runs it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::Severity;
use crate::output::Format;
use crate::output::catalog::CatalogFormat;

#[derive(Parser, Debug)]
#[command(name = "palisade", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan manifest files for security risks (for CI and pre-commit).
    Scan(ScanArgs),
    /// List the checks Palisade runs.
    Checks(ChecksArgs),
    /// RBAC analysis: can-i, who-can and effective permissions, from
    /// manifests or a live cluster.
    Rbac(crate::rbac::command::RbacArgs),
    /// Watch the cluster and keep ScanReports up to date.
    Operator(crate::operator::OperatorArgs),
    /// Print Palisade's CustomResourceDefinitions as YAML.
    Crds,
    /// Regenerate the generated sections of the documentation
    /// (scripts/gen-docs.sh).
    #[command(hide = true)]
    Docs(crate::docs::DocsArgs),
}

/// Exit codes: 0 no unsuppressed finding at or above `--fail-on`, 1 there
/// are, 2 usage errors or (unless `--invalid=warn`) invalid input.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 no unsuppressed finding at or above --fail-on, \
                        1 there are, 2 usage error or an input that is not a valid manifest \
                        (after the full report; --invalid=warn reports it without changing \
                        the status)."
)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively: .yaml, .yml,
    /// .json); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Exit with status 1 when an unsuppressed finding is at or above this
    /// severity.
    #[arg(long, value_enum, default_value_t = FailOn::High, value_name = "SEVERITY")]
    pub fail_on: FailOn,

    /// Run only these checks (ids or other tools' ids, comma separated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub checks: Vec<String>,

    /// Do not run these checks (ids or other tools' ids, comma separated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub skip_checks: Vec<String>,

    /// Leave findings below this severity out of the output. The summary
    /// counts and the exit status still include them.
    #[arg(long, value_enum, default_value_t = SeverityArg::Info, value_name = "SEVERITY")]
    pub min_severity: SeverityArg,

    /// List suppressed findings in the table (other formats always carry
    /// them, marked as suppressed).
    #[arg(long)]
    pub show_suppressed: bool,

    /// A ScanPolicy document (apiVersion palisade.dev/v1alpha1): checks,
    /// severity overrides, exceptions.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// What an input that is not a valid manifest does to the exit status:
    /// `error` exits 2 (after the full report), `warn` only reports it.
    /// Every valid document is scanned either way.
    #[arg(long, value_enum, default_value_t = Invalid::Error, value_name = "MODE")]
    pub invalid: Invalid,

    /// The Kubernetes release the manifests are for (e.g. `1.25`): decides
    /// which API versions `removed-api-version` and `deprecated-api-version`
    /// report. Default: the newest release Palisade knows.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<crate::model::KubernetesVersion>,
}

/// `--invalid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Invalid {
    Error,
    Warn,
}

#[derive(Args, Debug)]
pub struct ChecksArgs {
    /// Output format; `markdown` is docs/checks.md.
    #[arg(short, long, value_enum, default_value_t = CatalogFormat::Table)]
    pub output: CatalogFormat,
    /// A ScanPolicy file whose custom CEL checks are listed beside the
    /// built-in ones.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
}

/// `--fail-on`: a severity, or `none` to never fail on findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    None,
}

impl FailOn {
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
            FailOn::None => None,
        }
    }
}

/// A severity on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl From<SeverityArg> for Severity {
    fn from(arg: SeverityArg) -> Severity {
        match arg {
            SeverityArg::Critical => Severity::Critical,
            SeverityArg::High => Severity::High,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Info => Severity::Info,
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan(args) => crate::scan::run(&args),
        Command::Checks(args) => crate::scan::list_checks(&args),
        Command::Rbac(args) => block_on(crate::rbac::command::run(args)),
        Command::Operator(args) => {
            crate::operator::limit_malloc_arenas();
            match block_on(crate::operator::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Crds => {
            print!("{}", crate::crd::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Docs(args) => crate::docs::run(&args),
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
