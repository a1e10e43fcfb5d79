//! Kubernetes Events on scanned objects, rate-limited so that a flapping
//! object or a mass change cannot flood the API server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::report::PlannedEvent;
use super::target::{MAX_NAME_LEN, TargetKey, hashed_name, is_dns_subdomain};

/// The reporting controller of every Event.
const CONTROLLER: &str = "palisade";
/// Events of cluster-scoped objects go to this namespace (as with
/// `kubectl` and client-go).
const CLUSTER_EVENTS_NAMESPACE: &str = "default";

/// Events one target may get in a burst, per reason.
const PER_TARGET_BURST: f64 = 5.0;
/// One more event per target and reason this often.
const PER_TARGET_REFILL: Duration = Duration::from_secs(30);
/// Events the whole operator may send in a burst.
const GLOBAL_BURST: f64 = 100.0;
/// Events per second the whole operator may send after a burst.
const GLOBAL_PER_SECOND: f64 = 10.0;

/// Reason of the Event on an object the operator cannot decode.
pub const REASON_UNDECODABLE: &str = "Undecodable";

/// Longest Event note the API server accepts is 1 kB.
const MAX_NOTE: usize = 1000;

/// Cheap to clone: clones share the rate limits.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    /// This replica, as `reportingInstance`.
    instance: String,
    limits: Arc<Mutex<Limits>>,
}

struct Limits {
    global: Bucket,
    /// Per object (its `kind/namespace/name`) and reason.
    per_target: HashMap<(String, &'static str), Bucket>,
}

/// A token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity,
            at: now,
        }
    }

    fn take(&mut self, capacity: f64, per_second: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl EventPublisher {
    pub fn new(client: Client, instance: Option<String>) -> EventPublisher {
        EventPublisher {
            client,
            instance: instance.unwrap_or_else(|| CONTROLLER.to_owned()),
            limits: Arc::new(Mutex::new(Limits {
                global: Bucket::full(GLOBAL_BURST, Instant::now()),
                per_target: HashMap::new(),
            })),
        }
    }

    /// Whether an event may be sent now; takes a token when it may.
    fn allow(&self, key: &str, reason: &'static str) -> bool {
        let now = Instant::now();
        let per_second = 1.0 / PER_TARGET_REFILL.as_secs_f64();
        let mut limits = self.limits.lock().expect("event limits lock");
        let bucket = limits
            .per_target
            .entry((key.to_owned(), reason))
            .or_insert_with(|| Bucket::full(PER_TARGET_BURST, now));
        let mut probe = *bucket;
        if !probe.take(PER_TARGET_BURST, per_second, now) {
            *bucket = probe;
            return false;
        }
        if !limits.global.take(GLOBAL_BURST, GLOBAL_PER_SECOND, now) {
            return false;
        }
        limits.per_target.insert((key.to_owned(), reason), probe);
        // Full buckets carry no state worth keeping.
        if limits.per_target.len() > 10_000 {
            let full_after = PER_TARGET_REFILL.mul_f64(PER_TARGET_BURST);
            limits
                .per_target
                .retain(|_, b| now.saturating_duration_since(b.at) < full_after);
        }
        true
    }

    /// Publishes `planned` on `target`; returns how many were sent.
    pub async fn publish(
        &self,
        key: &TargetKey,
        target: &ObjectReference,
        planned: &[PlannedEvent],
    ) -> Result<usize, kube::Error> {
        self.publish_on(&key.to_string(), target, planned).await
    }

    /// Publishes a Warning `Undecodable` on an object the operator cannot
    /// decode, saying which field is wrong.
    pub async fn undecodable(
        &self,
        object: &ObjectReference,
        error: &str,
    ) -> Result<usize, kube::Error> {
        let key = format!(
            "{}/{}/{}",
            object.kind.as_deref().unwrap_or_default(),
            object.namespace.as_deref().unwrap_or_default(),
            object.name.as_deref().unwrap_or_default()
        );
        let planned = PlannedEvent {
            reason: REASON_UNDECODABLE,
            warning: true,
            note: cut(format!(
                "Palisade cannot read this object and ignores it until it is fixed: {error}"
            )),
        };
        self.publish_on(&key, object, &[planned]).await
    }

    async fn publish_on(
        &self,
        key: &str,
        target: &ObjectReference,
        planned: &[PlannedEvent],
    ) -> Result<usize, kube::Error> {
        let mut sent = 0;
        for event in planned {
            if !self.allow(key, event.reason) {
                tracing::debug!(target = %key, reason = event.reason, "event rate-limited");
                continue;
            }
            let event = self.event(target, event, Timestamp::now());
            let namespace = event
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(CLUSTER_EVENTS_NAMESPACE);
            Api::<Event>::namespaced(self.client.clone(), namespace)
                .create(&PostParams::default(), &event)
                .await?;
            sent += 1;
        }
        Ok(sent)
    }
}

impl EventPublisher {
    /// The events.k8s.io Event for `planned` on `target` at `now`.
    fn event(&self, target: &ObjectReference, planned: &PlannedEvent, now: Timestamp) -> Event {
        let target_name = target.name.as_deref().unwrap_or(CONTROLLER);
        Event {
            metadata: ObjectMeta {
                name: Some(event_name(target_name, now)),
                namespace: Some(
                    target
                        .namespace
                        .clone()
                        .unwrap_or_else(|| CLUSTER_EVENTS_NAMESPACE.to_owned()),
                ),
                ..ObjectMeta::default()
            },
            action: Some("Scan".into()),
            reason: Some(planned.reason.to_owned()),
            note: Some(planned.note.clone()),
            type_: Some(if planned.warning { "Warning" } else { "Normal" }.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(target.clone()),
            reporting_controller: Some(CONTROLLER.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// `note` cut to what an Event note may hold.
fn cut(mut note: String) -> String {
    if note.len() > MAX_NOTE {
        let mut end = MAX_NOTE - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

/// The name of an Event on the object named `target_name`, at `now`:
/// `<name>.<nanoseconds in hex>` as client-go names them, but always a
/// valid DNS subdomain (the API server refuses any other Event name): a
/// target name with characters a subdomain does not allow (`system:node`,
/// `evil:secret-reader`, upper case) or too long to take the suffix is
/// replaced by its [`hashed_name`].
pub fn event_name(target_name: &str, now: Timestamp) -> String {
    let nanos = now.as_nanosecond().max(0);
    let suffix = format!("{nanos:x}");
    let room = MAX_NAME_LEN.saturating_sub(suffix.len() + 1);
    let head = if target_name.len() <= room && is_dns_subdomain(target_name) {
        target_name.to_owned()
    } else {
        hashed_name(target_name, room)
    };
    format!("{head}.{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_dns_subdomains_whatever_the_target_name() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let long = "a".repeat(253);
        for name in [
            "system:controller:deployment-controller",
            "evil:secret-reader",
            "Admin",
            long.as_str(),
            "a.b",
            "",
        ] {
            let event = event_name(name, now);
            assert!(is_dns_subdomain(&event), "{name:?}: {event}");
        }
        assert_eq!(
            event_name("web", now),
            format!("web.{:x}", now.as_nanosecond())
        );
        assert_ne!(
            event_name("evil:secret-reader", now),
            event_name("evil-secret-reader", now)
        );
    }

    #[test]
    fn bucket_refills_over_time() {
        let start = Instant::now();
        let mut b = Bucket::full(2.0, start);
        assert!(b.take(2.0, 1.0, start));
        assert!(b.take(2.0, 1.0, start));
        assert!(!b.take(2.0, 1.0, start));
        assert!(b.take(2.0, 1.0, start + Duration::from_secs(1)));
        // Never more than the capacity, however long it rested.
        let later = start + Duration::from_secs(1000);
        assert!(b.take(2.0, 1.0, later));
        assert!(b.take(2.0, 1.0, later));
        assert!(!b.take(2.0, 1.0, later));
    }
}
