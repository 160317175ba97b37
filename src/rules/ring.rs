//! Who is rung, and in what order, pure: quiet hours narrow the list, and a sequential
//! order rings one number at a time, each through a dial that brings Twilio back to ask
//! for the next step when that person did not answer.

use std::time::Duration;

use crate::config::ring::{Order, RingConfig};
use crate::model::phone::PhoneNumber;
use crate::model::record::Decision;

/// The numbers to ring now, in `forward_to`'s order: during quiet hours only the chosen
/// ones. `local_minute` is the local time (minutes after midnight), `None` when the clock
/// is not trusted: then quiet hours do not apply, and everyone is rung (the resident
/// rather gets a call at night than misses a visitor).
pub fn who(forward_to: &[PhoneNumber], ring: &RingConfig, local_minute: Option<u16>) -> Vec<PhoneNumber> {
    match (&ring.quiet_hours, local_minute) {
        (Some(q), Some(m)) if within(q.from, q.to, m) => {
            forward_to.iter().filter(|n| q.only.contains(n)).cloned().collect()
        }
        _ => forward_to.to_vec(),
    }
}

/// Whether `m` is in `from..to`, which runs past midnight when `to` is not after `from`.
fn within(from: u16, to: u16, m: u16) -> bool {
    if from < to {
        from <= m && m < to
    } else {
        m >= from || m < to
    }
}

/// A forward in sequential order becomes the first person's dial; anything else is
/// left as it is.
pub fn in_order(decision: Decision, ring: &RingConfig) -> Decision {
    match decision {
        Decision::Forward { numbers, timeout_secs, no_answer_message } if ring.order == Order::Sequential => {
            step(&numbers, 0, ring, Duration::from_secs(timeout_secs))
                .unwrap_or(Decision::NobodyToCall { message: no_answer_message })
        }
        other => other,
    }
}

/// The dial to person `i` (0-based) of `numbers`, or `None` past the last. When it
/// ends unanswered, Twilio asks for step `i + 1`. `default` is the ring time of a number
/// without one of its own.
pub fn step(numbers: &[PhoneNumber], i: usize, ring: &RingConfig, default: Duration) -> Option<Decision> {
    let number = numbers.get(i)?.clone();
    let timeout_secs = ring.ring_time(&number, default).as_secs();
    Some(Decision::DialOne { number, timeout_secs, next: i + 1 })
}

/// Whether Twilio's `DialCallStatus` says the person took the call (then the call is
/// over when they hang up). Anything else (`no-answer`, `busy`, `failed`, `canceled`, a
/// value we do not know, none) means: try the next person.
pub fn answered(dial_call_status: Option<&str>) -> bool {
    matches!(dial_call_status, Some("completed" | "answered"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ring::QuietHours;
    use crate::config::values::MINUTES_PER_DAY;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn sequential() -> RingConfig {
        RingConfig {
            order: Order::Sequential,
            ring_times: vec![(n("+15550000001"), Duration::from_secs(20))],
            quiet_hours: None,
        }
    }

    #[test]
    fn sequential_rings_one_at_a_time_with_each_ring_time() {
        let list = [n("+15550000001"), n("+15550000002")];
        let forward =
            Decision::Forward { numbers: list.to_vec(), timeout_secs: 25, no_answer_message: "bye".into() };
        let first = in_order(forward.clone(), &sequential());
        assert_eq!(first, Decision::DialOne { number: list[0].clone(), timeout_secs: 20, next: 1 });
        let second = step(&list, 1, &sequential(), Duration::from_secs(25)).unwrap();
        assert_eq!(second, Decision::DialOne { number: list[1].clone(), timeout_secs: 25, next: 2 });
        assert!(step(&list, 2, &sequential(), Duration::from_secs(25)).is_none());
        assert_eq!(in_order(forward.clone(), &RingConfig::default()), forward, "simultaneous: as before");
        let nobody = Decision::Forward { numbers: vec![], timeout_secs: 25, no_answer_message: "bye".into() };
        assert_eq!(in_order(nobody, &sequential()), Decision::NobodyToCall { message: "bye".into() });
    }

    #[test]
    fn twilio_dial_statuses() {
        assert!(answered(Some("completed")) && answered(Some("answered")));
        for s in [Some("no-answer"), Some("busy"), Some("failed"), Some("canceled"), Some("x"), None] {
            assert!(!answered(s), "{s:?}");
        }
    }

    #[test]
    fn quiet_hours_ring_only_the_chosen_and_need_a_trusted_clock() {
        let all = [n("+15550000001"), n("+15550000002"), n("+15550000003")];
        let ring = RingConfig {
            quiet_hours: Some(QuietHours { from: 22 * 60, to: 7 * 60, only: vec![n("+15550000003")] }),
            ..RingConfig::default()
        };
        assert_eq!(who(&all, &ring, Some(23 * 60)), [n("+15550000003")]);
        assert_eq!(who(&all, &ring, Some(3 * 60)), [n("+15550000003")], "past midnight");
        assert_eq!(who(&all, &ring, Some(7 * 60)), all, "over at 07:00");
        assert_eq!(who(&all, &ring, Some(12 * 60)), all);
        assert_eq!(who(&all, &ring, None), all, "untrusted clock: everyone");
        let day = RingConfig {
            quiet_hours: Some(QuietHours { from: 13 * 60, to: MINUTES_PER_DAY, only: vec![] }),
            ..RingConfig::default()
        };
        assert!(who(&all, &day, Some(23 * 60 + 59)).is_empty());
        assert_eq!(who(&all, &day, Some(0)), all);
    }
}
