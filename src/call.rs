//! The decision for one incoming call: reject, unlock or forward. Pure: no I/O, no clock.

use crate::phone::PhoneNumber;
use crate::record::Decision;

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
}
