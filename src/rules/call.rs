//! The decision for one incoming call: reject, unlock or forward. Pure: no I/O, no clock.

use crate::config::entrances::{self, Entrance};
use crate::model::phone::PhoneNumber;
use crate::model::record::Decision;

/// What the call rules need to know, already resolved from config and query overrides.
pub struct CallRules<'a> {
    /// The intercoms, each with its number and tones (one unnamed for `intercom_number`).
    pub intercoms: &'a [Entrance],
    pub forward_to: &'a [PhoneNumber],
    pub dial_timeout_secs: u64,
    pub no_answer_message: &'a str,
}

impl<'a> CallRules<'a> {
    /// The configured rules, with the intercoms and numbers given (the config's, or a
    /// request's overrides).
    pub fn new(
        config: &'a crate::config::Config,
        intercoms: &'a [Entrance],
        forward_to: &'a [PhoneNumber],
    ) -> CallRules<'a> {
        CallRules {
            intercoms,
            forward_to,
            dial_timeout_secs: config.dial_timeout.as_secs(),
            no_answer_message: &config.no_answer_message,
        }
    }
}

/// The entrance a caller is, if it is one of the intercoms.
pub fn entrance<'a>(from: Option<&str>, rules: &CallRules<'a>) -> Option<&'a Entrance> {
    let from = PhoneNumber::parse(from?).ok()?;
    entrances::find(rules.intercoms, &from)
}

/// Fail closed: a caller that is missing, unparsable or none of the intercoms is
/// rejected, and so is every caller when no intercom is known at all. An unlock plays
/// the tones of the entrance that called.
pub fn decide(from: Option<&str>, window_open: bool, rules: &CallRules) -> Decision {
    let Some(entrance) = entrance(from, rules) else {
        return Decision::Reject;
    };
    if window_open {
        Decision::Unlock { digits: entrance.unlock_digits.clone() }
    } else if rules.forward_to.is_empty() {
        Decision::NobodyToCall { message: rules.no_answer_message.to_string() }
    } else {
        Decision::Forward {
            numbers: rules.forward_to.to_vec(),
            timeout_secs: rules.dial_timeout_secs,
            no_answer_message: rules.no_answer_message.to_string(),
        }
    }
}

/// Whether a decision is the plain "forward" that a guest code may turn into "unlock":
/// strangers are rejected and an open window unlocks before any code is asked or read.
pub fn code_may_apply(decision: &Decision) -> bool {
    matches!(decision, Decision::Forward { .. } | Decision::NobodyToCall { .. })
}

/// The answer on `/voice`: the keypad prompt instead of forwarding when codes are offered.
pub fn with_code_prompt(decision: Decision, offered: bool, action: &str) -> Decision {
    if offered && code_may_apply(&decision) {
        Decision::AskCode { action: action.to_string() }
    } else {
        decision
    }
}

/// The answer on `/voice/code`: a right code unlocks what would have been forwarded,
/// with the tones of the entrance that called.
pub fn after_code(decision: Decision, right_code: bool, from: Option<&str>, rules: &CallRules) -> Decision {
    if right_code && code_may_apply(&decision) {
        decide(from, true, rules)
    } else {
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn one(number: &PhoneNumber) -> Vec<Entrance> {
        vec![Entrance { name: None, number: number.clone(), unlock_digits: "ww9".into() }]
    }

    fn rules<'a>(intercoms: &'a [Entrance], fwd: &'a [PhoneNumber]) -> CallRules<'a> {
        CallRules { intercoms, forward_to: fwd, dial_timeout_secs: 25, no_answer_message: "bye" }
    }

    #[test]
    fn strangers_are_rejected_whatever_the_window() {
        let intercom = n("+15558889999");
        let ic = one(&intercom);
        let fwd = [n("+15552223333")];
        for open in [false, true] {
            for from in [Some("+15550000000"), Some("anonymous"), Some(""), None] {
                assert_eq!(decide(from, open, &rules(&ic, &fwd)), Decision::Reject);
            }
        }
    }

    #[test]
    fn no_intercom_number_rejects_everyone() {
        assert_eq!(decide(Some("+15558889999"), true, &rules(&[], &[])), Decision::Reject);
    }

    #[test]
    fn the_intercom_unlocks_when_open_and_forwards_otherwise() {
        let intercom = n("+15558889999");
        let ic = one(&intercom);
        let fwd = [n("+15552223333"), n("+15554445555")];
        let r = rules(&ic, &fwd);
        assert_eq!(decide(Some("+1 555 888-9999"), true, &r), Decision::Unlock { digits: "ww9".into() });
        match decide(Some("+15558889999"), false, &r) {
            Decision::Forward { numbers, timeout_secs: 25, .. } => assert_eq!(numbers, fwd),
            d => panic!("{d:?}"),
        }
        assert_eq!(decide(Some("+15558889999"), false, &rules(&ic, &[])).name(), "forwarded");
    }

    #[test]
    fn codes_only_ever_turn_a_forward_into_a_prompt_or_an_unlock() {
        let intercom = n("+15558889999");
        let ic = one(&intercom);
        let fwd = [n("+15552223333")];
        let r = rules(&ic, &fwd);
        let forward = decide(Some("+15558889999"), false, &r);
        let nobody = decide(Some("+15558889999"), false, &rules(&ic, &[]));
        let open = decide(Some("+15558889999"), true, &r);
        let stranger = decide(Some("+15550000000"), false, &r);
        let ask = Decision::AskCode { action: "/voice/code".into() };
        assert_eq!(with_code_prompt(forward.clone(), true, "/voice/code"), ask);
        assert_eq!(with_code_prompt(nobody.clone(), true, "/voice/code"), ask);
        assert_eq!(with_code_prompt(forward.clone(), false, "/voice/code"), forward, "not offered: as today");
        assert_eq!(
            with_code_prompt(open.clone(), true, "/voice/code"),
            open,
            "an open window unlocks at once"
        );
        assert_eq!(with_code_prompt(stranger.clone(), true, "/voice/code"), Decision::Reject);
        let unlock = Decision::Unlock { digits: "ww9".into() };
        let me = Some("+15558889999");
        assert_eq!(after_code(forward.clone(), true, me, &r), unlock);
        assert_eq!(after_code(forward.clone(), false, me, &r), forward);
        assert_eq!(
            after_code(stranger, true, Some("+15550000000"), &r),
            Decision::Reject,
            "a stranger never gets in by code"
        );
        assert!(!code_may_apply(&open) && code_may_apply(&nobody));
    }

    #[test]
    fn each_entrance_gets_its_own_tones_and_a_third_number_is_rejected() {
        let gate =
            Entrance { name: Some("gate".into()), number: n("+15558880001"), unlock_digits: "9".into() };
        let door =
            Entrance { name: Some("door".into()), number: n("+15558880002"), unlock_digits: "ww1#".into() };
        let list = [gate, door];
        let fwd = [n("+15552223333")];
        let r = rules(&list, &fwd);
        assert_eq!(decide(Some("+15558880001"), true, &r), Decision::Unlock { digits: "9".into() });
        assert_eq!(decide(Some("+15558880002"), true, &r), Decision::Unlock { digits: "ww1#".into() });
        assert_eq!(decide(Some("+15558880003"), true, &r), Decision::Reject);
        assert_eq!(entrance(Some("+1 555 888 0002"), &r).unwrap().name.as_deref(), Some("door"));
        assert_eq!(decide(Some("+15558880002"), false, &r).name(), "forwarded");
        let forward = decide(Some("+15558880002"), false, &r);
        assert_eq!(
            after_code(forward, true, Some("+15558880002"), &r),
            Decision::Unlock { digits: "ww1#".into() }
        );
    }
}
