//! The decision for one incoming call: reject, unlock or forward. Pure: no I/O, no clock.

use crate::model::phone::PhoneNumber;
use crate::model::record::Decision;

/// What the call rules need to know, already resolved from config and query overrides.
pub struct CallRules<'a> {
    pub intercom_number: Option<&'a PhoneNumber>,
    pub forward_to: &'a [PhoneNumber],
    pub unlock_digits: &'a str,
    pub dial_timeout_secs: u64,
    pub no_answer_message: &'a str,
}

impl<'a> CallRules<'a> {
    /// The configured rules, with the numbers given (the config's, or a request's overrides).
    pub fn new(
        config: &'a crate::config::Config,
        intercom_number: Option<&'a PhoneNumber>,
        forward_to: &'a [PhoneNumber],
    ) -> CallRules<'a> {
        CallRules {
            intercom_number,
            forward_to,
            unlock_digits: &config.unlock_digits,
            dial_timeout_secs: config.dial_timeout.as_secs(),
            no_answer_message: &config.no_answer_message,
        }
    }
}

/// Fail closed: a caller that is missing, unparsable or not the intercom is rejected,
/// and so is every caller when no intercom number is known at all.
pub fn decide(from: Option<&str>, window_open: bool, rules: &CallRules) -> Decision {
    let from = from.and_then(|f| PhoneNumber::parse(f).ok());
    match (from, rules.intercom_number) {
        (Some(from), Some(intercom)) if from == *intercom => {}
        _ => return Decision::Reject,
    }
    if window_open {
        Decision::Unlock { digits: rules.unlock_digits.to_string() }
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

/// The answer on `/voice/code`: a right code unlocks what would have been forwarded.
pub fn after_code(decision: Decision, right_code: bool, rules: &CallRules) -> Decision {
    if right_code && code_may_apply(&decision) {
        Decision::Unlock { digits: rules.unlock_digits.to_string() }
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

    fn rules<'a>(intercom: Option<&'a PhoneNumber>, fwd: &'a [PhoneNumber]) -> CallRules<'a> {
        CallRules {
            intercom_number: intercom,
            forward_to: fwd,
            unlock_digits: "ww9",
            dial_timeout_secs: 25,
            no_answer_message: "bye",
        }
    }

    #[test]
    fn strangers_are_rejected_whatever_the_window() {
        let intercom = n("+15558889999");
        let fwd = [n("+15552223333")];
        for open in [false, true] {
            for from in [Some("+15550000000"), Some("anonymous"), Some(""), None] {
                assert_eq!(decide(from, open, &rules(Some(&intercom), &fwd)), Decision::Reject);
            }
        }
    }

    #[test]
    fn no_intercom_number_rejects_everyone() {
        assert_eq!(decide(Some("+15558889999"), true, &rules(None, &[])), Decision::Reject);
    }

    #[test]
    fn the_intercom_unlocks_when_open_and_forwards_otherwise() {
        let intercom = n("+15558889999");
        let fwd = [n("+15552223333"), n("+15554445555")];
        let r = rules(Some(&intercom), &fwd);
        assert_eq!(decide(Some("+1 555 888-9999"), true, &r), Decision::Unlock { digits: "ww9".into() });
        match decide(Some("+15558889999"), false, &r) {
            Decision::Forward { numbers, timeout_secs: 25, .. } => assert_eq!(numbers, fwd),
            d => panic!("{d:?}"),
        }
        assert_eq!(decide(Some("+15558889999"), false, &rules(Some(&intercom), &[])).name(), "forwarded");
    }

    #[test]
    fn codes_only_ever_turn_a_forward_into_a_prompt_or_an_unlock() {
        let intercom = n("+15558889999");
        let fwd = [n("+15552223333")];
        let r = rules(Some(&intercom), &fwd);
        let forward = decide(Some("+15558889999"), false, &r);
        let nobody = decide(Some("+15558889999"), false, &rules(Some(&intercom), &[]));
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
        assert_eq!(after_code(forward.clone(), true, &r), unlock);
        assert_eq!(after_code(forward.clone(), false, &r), forward);
        assert_eq!(after_code(stranger, true, &r), Decision::Reject, "a stranger never gets in by code");
        assert!(!code_may_apply(&open) && code_may_apply(&nobody));
    }
}
