//! The operator's command-line flags; each can also come from an
//! environment variable, which is how the Deployment sets them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

/// Flags of `palisade operator`.
#[derive(Args, Clone, Debug)]
pub struct OperatorArgs {
    /// Kubeconfig file; by default `KUBECONFIG`, then `~/.kube/config`,
    /// then the in-cluster service account.
    #[arg(long, env = "PALISADE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Only scan these namespaces (comma separated). Cluster-scoped objects
    /// (ClusterRoles, ClusterRoleBindings) are then not reported, and the
    /// operator needs read access in these namespaces only.
    #[arg(long, env = "PALISADE_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,

    /// Never scan these namespaces (comma separated).
    #[arg(long, env = "PALISADE_EXCLUDE_NAMESPACES", value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,

    /// How many objects are evaluated at once.
    #[arg(long, env = "PALISADE_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,

    /// How often everything is re-evaluated (e.g. `30s`, `45m`, `6h`;
    /// from 1s to 7d).
    #[arg(long, env = "PALISADE_RESYNC_INTERVAL", default_value = "6h", value_parser = parse_resync_interval)]
    pub resync_interval: Duration,

    /// Address of the `/metrics`, `/healthz` and `/readyz` endpoints.
    #[arg(long, env = "PALISADE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log line format.
    #[arg(long, env = "PALISADE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or `tracing` filter (e.g. `info`, `palisade=debug,kube=info`).
    #[arg(long, env = "PALISADE_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Name of the ScanPolicy to use.
    #[arg(long, env = "PALISADE_POLICY_NAME", default_value = "default")]
    pub policy_name: String,

    /// Run only while holding a Lease, so that several replicas can run and
    /// exactly one writes.
    #[arg(long, env = "PALISADE_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,

    /// Name of the leader-election Lease.
    #[arg(long, env = "PALISADE_LEASE_NAME", default_value = "palisade")]
    pub lease_name: String,

    /// Namespace of the leader-election Lease.
    #[arg(
        long,
        env = "PALISADE_LEASE_NAMESPACE",
        default_value = "palisade-system"
    )]
    pub lease_namespace: String,

    /// How long a Lease stays valid without renewal; another replica takes
    /// over after that.
    #[arg(long, env = "PALISADE_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// This replica's identity in the Lease; by default the pod name
    /// (`POD_NAME`), else the host name and process id.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// Also write OpenReports (openreports.io/v1alpha1): one Report per
    /// namespace and a ClusterReport, for Policy Reporter and other
    /// consumers. Needs the OpenReports CRDs; without them the operator says
    /// so in its log and in the ScanPolicy's `OpenReportsAvailable` condition.
    #[arg(long, env = "PALISADE_EMIT_OPENREPORTS", default_value_t = false)]
    pub emit_openreports: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Shortest `--resync-interval`: a full re-evaluation costs a pass over
/// every object.
pub const MIN_RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `--resync-interval` (and ScanPolicy `rescanInterval`).
pub const MAX_RESYNC_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// Parses `30s`, `5m`, `6h`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::policy::parse_duration(s)
}

/// Parses `--resync-interval`: 1s to 7d.
fn parse_resync_interval(s: &str) -> Result<Duration, String> {
    crate::policy::parse_bounded(s, MIN_RESYNC_INTERVAL, MAX_RESYNC_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: OperatorArgs,
    }

    #[test]
    fn resync_interval_is_bounded() {
        for bad in ["500ms", "8d", "18446744073709551615s"] {
            assert!(
                Cli::try_parse_from(["palisade", "--resync-interval", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn defaults_and_flags() {
        let cli = Cli::parse_from(["palisade"]);
        assert_eq!(cli.args.concurrency, 4);
        assert_eq!(cli.args.resync_interval, Duration::from_secs(6 * 3600));
        assert!(!cli.args.leader_election);
        assert!(!cli.args.emit_openreports);
        let cli = Cli::parse_from([
            "palisade",
            "--namespaces",
            "a,b",
            "--resync-interval",
            "30s",
            "--log-format",
            "json",
        ]);
        assert_eq!(cli.args.namespaces, vec!["a", "b"]);
        assert_eq!(cli.args.resync_interval, Duration::from_secs(30));
        assert_eq!(cli.args.log_format, LogFormat::Json);
    }
}
