//! Status conditions: the one rule for their transition time.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The `lastTransitionTime` of the condition `type_` now at `status`: the
/// previous one's while its status did not change (a new reason or message
/// is not a transition), `now` when it did or when there was none.
pub fn transition_time(previous: &[Condition], type_: &str, status: &str, now: Timestamp) -> Time {
    previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn condition(type_: &str, status: &str, since: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "Reason".into(),
            message: String::new(),
            last_transition_time: Time(at(since)),
            observed_generation: None,
        }
    }

    #[test]
    fn the_time_moves_only_when_the_status_does() {
        let previous = [
            condition("Valid", "True", 10),
            condition("Ready", "False", 20),
        ];
        assert_eq!(
            transition_time(&previous, "Valid", "True", at(99)),
            Time(at(10))
        );
        assert_eq!(
            transition_time(&previous, "Valid", "False", at(99)),
            Time(at(99))
        );
        assert_eq!(
            transition_time(&previous, "Ready", "False", at(99)),
            Time(at(20))
        );
        assert_eq!(
            transition_time(&previous, "Other", "True", at(99)),
            Time(at(99))
        );
        assert_eq!(transition_time(&[], "Valid", "True", at(99)), Time(at(99)));
    }
}
