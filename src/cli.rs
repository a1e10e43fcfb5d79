use clap::Parser;
#[derive(Parser)]
#[command(name = "palisade", version, about)]
pub struct Cli {}
pub fn main() -> std::process::ExitCode {
    let _ = Cli::parse();
    std::process::ExitCode::SUCCESS
}
