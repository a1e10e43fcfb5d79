//! Kubernetes Events on scanned objects, rate-limited so that a flapping
//! object or a mass change cannot flood the API server.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::time::Instant;

use super::report::PlannedEvent;
use super::target::TargetKey;

/// Events one target may get in a burst, per reason.
const PER_TARGET_BURST: f64 = 5.0;
/// One more event per target and reason this often.
const PER_TARGET_REFILL: Duration = Duration::from_secs(30);
/// Events the whole operator may send in a burst.
const GLOBAL_BURST: f64 = 100.0;
/// Events per second the whole operator may send after a burst.
const GLOBAL_PER_SECOND: f64 = 10.0;

pub struct EventPublisher {
    recorder: Recorder,
    limits: Mutex<Limits>,
}

struct Limits {
    global: Bucket,
    per_target: HashMap<(TargetKey, &'static str), Bucket>,
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
        let reporter = Reporter {
            controller: "palisade".into(),
            instance,
        };
        EventPublisher {
            recorder: Recorder::new(client, reporter),
            limits: Mutex::new(Limits {
                global: Bucket::full(GLOBAL_BURST, Instant::now()),
                per_target: HashMap::new(),
            }),
        }
    }

    /// Whether an event may be sent now; takes a token when it may.
    fn allow(&self, key: &TargetKey, reason: &'static str) -> bool {
        let now = Instant::now();
        let per_second = 1.0 / PER_TARGET_REFILL.as_secs_f64();
        let mut limits = self.limits.lock().expect("event limits lock");
        let bucket = limits
            .per_target
            .entry((key.clone(), reason))
            .or_insert_with(|| Bucket::full(PER_TARGET_BURST, now));
        let mut probe = *bucket;
        if !probe.take(PER_TARGET_BURST, per_second, now) {
            *bucket = probe;
            return false;
        }
        if !limits.global.take(GLOBAL_BURST, GLOBAL_PER_SECOND, now) {
            return false;
        }
        limits.per_target.insert((key.clone(), reason), probe);
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
        let mut sent = 0;
        for event in planned {
            if !self.allow(key, event.reason) {
                tracing::debug!(target = %key, reason = event.reason, "event rate-limited");
                continue;
            }
            let event = Event {
                type_: if event.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: event.reason.to_owned(),
                note: Some(event.note.clone()),
                action: "Scan".into(),
                secondary: None,
            };
            self.recorder.publish(&event, target).await?;
            sent += 1;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
