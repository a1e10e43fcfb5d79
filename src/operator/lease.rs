//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go does
//! it: create the Lease if absent, renew it with resourceVersion-guarded
//! updates, take it over only when its holder has not renewed it for a full
//! lease duration as seen by this replica's clock (clocks of different
//! nodes are never compared), and hand it back on shutdown.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

/// When leadership ends without a renewal: `renew_deadline` after the last
/// renewal was sent (at once if that overflows: better to stop leading).
fn renew_deadline_after(renewed_at: Instant, renew_deadline: Duration) -> Instant {
    renewed_at.checked_add(renew_deadline).unwrap_or(renewed_at)
}

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    /// How long the Lease is valid after each renewal.
    pub duration: Duration,
    /// Leadership is given up when renewals have failed for this long;
    /// shorter than `duration`, so this replica stops before another starts.
    pub renew_deadline: Duration,
    /// Time between attempts (to acquire, or to renew).
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// Client-go's ratios: renew deadline 2/3 and retry period 2/15 of the
    /// lease duration (10 s and 2 s for 15 s).
    pub fn new(name: &str, namespace: &str, identity: &str, duration: Duration) -> LeaseConfig {
        LeaseConfig {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            identity: identity.to_owned(),
            duration,
            renew_deadline: fraction(duration, 2, 3),
            retry_period: fraction(duration, 2, 15),
        }
    }
}

/// `duration * numerator / denominator`, without overflow: divided first
/// when multiplying first would overflow.
fn fraction(duration: Duration, numerator: u32, denominator: u32) -> Duration {
    match duration.checked_mul(numerator) {
        Some(product) => product / denominator,
        None => (duration / denominator).saturating_mul(numerator),
    }
}

/// The Lease's `leaseDurationSeconds`: whole seconds, at least 1.
fn lease_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The holder and renew time last seen, and when this replica saw them
    /// change: the Lease has expired when they stay the same for `duration`.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Tries once to become or stay the holder.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(current) = self.api.get_opt(&self.config.name).await? else {
            return self.create(now).await;
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let held_by_me = holder.as_deref() == Some(self.config.identity.as_str());
        self.observe(&holder, &spec.renew_time);
        if !held_by_me && holder.is_some() && !self.observed_expired() {
            return Ok(false);
        }
        let next = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(lease_seconds(self.config.duration)),
            acquire_time: if held_by_me {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(
                spec.lease_transitions
                    .unwrap_or(0)
                    .saturating_add(i32::from(!held_by_me)),
            ),
            ..spec
        };
        // `replace` sends the resourceVersion we read: if another replica
        // wrote in between, the API server answers 409 and we lost the race.
        let updated = Lease {
            metadata: current.metadata,
            spec: Some(next),
        };
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn create(&mut self, now: Timestamp) -> Result<bool, kube::Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(lease_seconds(self.config.duration)),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, holder: &Option<String>, renew: &Option<MicroTime>) {
        let unchanged = matches!(&self.observed, Some((h, r, _)) if h == holder && r == renew);
        if !unchanged {
            self.observed = Some((holder.clone(), renew.clone(), Instant::now()));
        }
    }

    fn observed_expired(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|(_, _, at)| at.elapsed() >= self.config.duration)
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            // Each attempt is bounded: a hung request must not keep this
            // replica from trying again once the API server answers.
            let attempt = self.config.renew_deadline;
            match tokio::time::timeout(attempt, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read or write the leader lease"),
                Err(_) => {
                    tracing::warn!(timeout = ?attempt, "no answer about the leader lease in time")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Keeps renewing; returns when leadership is lost: another holder, or
    /// no successful renewal within the renew deadline. Every attempt ends
    /// at that deadline, answered or not, so a hung request (a frozen API
    /// server) cannot keep this replica leading past it, and the deadline
    /// comes before the Lease expires for the other replicas.
    pub async fn hold(&mut self) {
        let mut renewed_at = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let deadline = renew_deadline_after(renewed_at, self.config.renew_deadline);
            // The Lease counts from when the renewal is sent, not answered.
            let sent_at = Instant::now();
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => renewed_at = sent_at,
                Ok(Ok(false)) => {
                    tracing::warn!("the leader lease was taken by another replica");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the leader lease"),
                Err(_) => tracing::warn!("no answer to the renewal of the leader lease"),
            }
            if renewed_at != sent_at && Instant::now() >= deadline {
                tracing::warn!(
                    deadline = ?self.config.renew_deadline,
                    "the leader lease could not be renewed in time"
                );
                return;
            }
        }
    }

    /// Gives the Lease up so that another replica takes over at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        match tokio::time::timeout(self.config.renew_deadline, self.release_now()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!("no answer when releasing the leader lease; it expires by itself");
                Ok(())
            }
        }
    }

    async fn release_now(&mut self) -> Result<(), kube::Error> {
        let Some(current) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let released = Lease {
            metadata: current.metadata,
            spec: Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                renew_time: Some(MicroTime(Timestamp::now())),
                ..spec
            }),
        };
        self.api
            .replace(&self.config.name, &PostParams::default(), &released)
            .await?;
        tracing::info!(lease = %self.config.name, "released the leader lease");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;
    use tower::BoxError;

    use super::*;

    /// A client whose every request stays unanswered, as with a frozen API
    /// server.
    fn frozen_client() -> kube::Client {
        let hung = tower::service_fn(|_request: Request<Body>| {
            std::future::pending::<Result<Response<Body>, BoxError>>()
        });
        kube::Client::new(hung, "default")
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_whose_renewals_hang_stops_before_its_lease_expires() {
        let duration = Duration::from_secs(15);
        let config = LeaseConfig::new("palisade", "palisade-system", "a", duration);
        let renew_deadline = config.renew_deadline;
        let mut elector = LeaderElector::new(frozen_client(), config);
        let started = Instant::now();
        let held = tokio::time::timeout(duration, elector.hold()).await;
        assert!(held.is_ok(), "still leading when the lease expired");
        let led = started.elapsed();
        assert!(
            led >= renew_deadline && led < duration,
            "gave up after {led:?}; deadline {renew_deadline:?}, lease {duration:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn acquiring_retries_after_a_hung_request() {
        let config = LeaseConfig::new("palisade", "palisade-system", "a", Duration::from_secs(15));
        let mut elector = LeaderElector::new(frozen_client(), config);
        // Never acquires, but keeps trying: each attempt is cut at the
        // renew deadline (the virtual clock runs only while all wait).
        let acquired = tokio::time::timeout(Duration::from_secs(60), elector.acquire()).await;
        assert!(acquired.is_err());
        let released = tokio::time::timeout(Duration::from_secs(60), elector.release()).await;
        assert!(matches!(released, Ok(Ok(()))), "releasing gives up in time");
    }

    #[test]
    fn lease_arithmetic_does_not_overflow() {
        let huge = LeaseConfig::new("l", "n", "i", Duration::MAX);
        assert!(huge.renew_deadline < huge.duration);
        assert_eq!(lease_seconds(Duration::MAX), i32::MAX);
        assert_eq!(lease_seconds(Duration::ZERO), 1);
        let normal = LeaseConfig::new("l", "n", "i", Duration::from_secs(15));
        assert_eq!(normal.renew_deadline, Duration::from_secs(10));
        assert_eq!(normal.retry_period, Duration::from_secs(2));
        let now = Instant::now();
        assert_eq!(
            renew_deadline_after(now, Duration::MAX),
            now,
            "stops at once"
        );
    }
}
