//! `palisade crds`: Palisade's CustomResourceDefinitions as YAML.

use std::process::ExitCode;

pub fn run() -> ExitCode {
    print!("{}", crate::crd::crds_yaml());
    ExitCode::SUCCESS
}
