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
            renew_deadline: duration.mul_f64(2.0 / 3.0),
            retry_period: duration.mul_f64(2.0 / 15.0),
        }
    }
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
            lease_duration_seconds: Some(self.config.duration.as_secs().max(1) as i32),
            acquire_time: if held_by_me {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me)),
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
                lease_duration_seconds: Some(self.config.duration.as_secs().max(1) as i32),
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
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read or write the leader lease"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Keeps renewing; returns when leadership is lost (another holder, or
    /// renewals failing for longer than the renew deadline).
    pub async fn hold(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => {
                    tracing::warn!("the leader lease was taken by another replica");
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot renew the leader lease"),
            }
            if last_renewal.elapsed() > self.config.renew_deadline {
                tracing::warn!("the leader lease could not be renewed in time");
                return;
            }
        }
    }

    /// Gives the Lease up so that another replica takes over at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
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
