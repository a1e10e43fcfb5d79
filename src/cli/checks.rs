//! `palisade checks`: the catalog, as a table, JSON or docs/checks.md.

use std::process::ExitCode;

use clap::Args;

use super::scan::{EXIT_ERROR, write_stdout};
use crate::output;
use crate::output::catalog::CatalogFormat;

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

/// `palisade checks`.
pub fn run(args: &ChecksArgs) -> ExitCode {
    let checks = match crate::policy::custom::catalog_with_policy(args.policy.as_deref()) {
        Ok(checks) => checks,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let text = output::catalog::render(&checks, args.output);
    match write_stdout(|out| out.write_all(text.as_bytes())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
