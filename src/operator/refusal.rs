//! When a watch counts as refused. Right after an API server starts, its
//! RBAC authorizer answers 403 until its informers have synced, for a
//! second or two; counting that as a refusal would mark hundreds of reports
//! `NotEvaluated` and rewrite them twice. A watch counts as refused only
//! when the API server has kept answering 403, with no success in between,
//! for [`REFUSAL_GRACE`].

use std::time::Duration;

use tokio::time::Instant;

/// How long 403s must persist before a watch counts as refused.
pub const REFUSAL_GRACE: Duration = Duration::from_secs(30);

/// The 403s of one watch since its last success.
#[derive(Debug)]
pub struct Refusals {
    grace: Duration,
    /// When the first 403 since the last success came, and the latest
    /// reason.
    pending: Option<(Instant, String)>,
    /// Whether the refusal has been reported (the grace ran out).
    reported: bool,
}

/// What the watch should do about a 403.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Too early to tell: keep the watch's state as it is.
    Wait,
    /// The refusal has lasted the grace period: report it with this reason.
    Refused(String),
}

impl Refusals {
    pub fn new(grace: Duration) -> Refusals {
        Refusals {
            grace,
            pending: None,
            reported: false,
        }
    }

    /// Records a 403 at `now`.
    pub fn refused(&mut self, reason: String, now: Instant) -> Verdict {
        let since = match self.pending.take() {
            Some((since, _)) => since,
            None => now,
        };
        self.pending = Some((since, reason));
        self.check(now)
    }

    /// The watch succeeded: the refusals are over.
    pub fn allowed(&mut self) {
        self.pending = None;
        self.reported = false;
    }

    /// Whether the pending refusal has lasted the grace period at `now`;
    /// reported once, then again only with each new 403.
    pub fn check(&mut self, now: Instant) -> Verdict {
        match &self.pending {
            Some((since, reason)) if now.saturating_duration_since(*since) >= self.grace => {
                self.reported = true;
                Verdict::Refused(reason.clone())
            }
            _ => Verdict::Wait,
        }
    }

    /// When the pending refusal's grace runs out, if it has not been
    /// reported yet (for a timer: the watcher's backoff may not bring
    /// another 403 until long after).
    pub fn deadline(&self) -> Option<Instant> {
        let (since, _) = self.pending.as_ref().filter(|_| !self.reported)?;
        Some(since.checked_add(self.grace).unwrap_or(*since))
    }

    /// Waits until [`Refusals::deadline`]; never completes without one.
    pub async fn deadline_passed(&self) {
        match self.deadline() {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_brief_403_is_not_a_refusal_but_a_lasting_one_is() {
        let mut refusals = Refusals::new(REFUSAL_GRACE);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(refusals.refused("warming".into(), at(0)), Verdict::Wait);
        assert_eq!(refusals.refused("warming".into(), at(2)), Verdict::Wait);
        refusals.allowed();
        assert_eq!(refusals.deadline(), None, "access returned in time");

        assert_eq!(refusals.refused("forbidden".into(), at(10)), Verdict::Wait);
        assert_eq!(refusals.deadline(), Some(at(40)));
        assert_eq!(refusals.refused("forbidden".into(), at(25)), Verdict::Wait);
        assert_eq!(
            refusals.check(at(40)),
            Verdict::Refused("forbidden".into()),
            "30 s of 403s since the first"
        );
        assert_eq!(refusals.deadline(), None, "reported once");
        assert_eq!(
            refusals.refused("still forbidden".into(), at(60)),
            Verdict::Refused("still forbidden".into())
        );
        refusals.allowed();
        assert_eq!(refusals.refused("again".into(), at(70)), Verdict::Wait);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_wakes_a_waiting_watch() {
        let mut refusals = Refusals::new(Duration::from_secs(30));
        refusals.refused("forbidden".into(), Instant::now());
        let started = Instant::now();
        refusals.deadline_passed().await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert!(matches!(
            refusals.check(Instant::now()),
            Verdict::Refused(_)
        ));
    }
}
