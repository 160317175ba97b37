//! The decision for one incoming call, from resolved values: the entrance calling (none:
//! a stranger), whether something lets it in, who is rung. Pure: no I/O, no clock.

use crate::config::entrances::Entrance;
use crate::config::Config;
use crate::model::phone::PhoneNumber;
use crate::model::record::Decision;
use crate::rules::ring;

/// The entrance a caller is, if it is one of the intercoms. Fail closed: a caller that is
/// missing, unparsable or none of them is a stranger, and so is every caller when no
/// intercom is known at all.
pub fn caller<'a>(from: Option<&str>, intercoms: &'a [Entrance]) -> Option<&'a Entrance> {
    let from = PhoneNumber::parse(from?).ok()?;
    intercoms.iter().find(|e| e.number == from)
}

/// A stranger is rejected whatever lets visitors in. An unlock plays the tones of the
/// entrance that called; otherwise `ringing` is rung.
pub fn decide(
    entrance: Option<&Entrance>,
    let_in: bool,
    ringing: &[PhoneNumber],
    config: &Config,
) -> Decision {
    let Some(entrance) = entrance else { return Decision::Reject };
    let no_answer_message = config.no_answer_message.clone();
    if let_in {
        Decision::Unlock { digits: entrance.unlock_digits.clone() }
    } else if ringing.is_empty() {
        Decision::NobodyToCall { message: no_answer_message }
    } else {
        let timeout_secs = config.dial_timeout.as_secs();
        Decision::Forward { numbers: ringing.to_vec(), timeout_secs, no_answer_message }
    }
}

/// Whether a guest code may turn the call's forward into an unlock: strangers are
/// rejected, and a caller something lets in is let in before any code is asked or read.
pub fn code_may_apply(entrance: Option<&Entrance>, let_in: bool) -> bool {
    entrance.is_some() && !let_in
}

/// The answer on `/voice`: the keypad prompt instead of a forward when guest codes are
/// offered, and a sequential order's first dial. `intercom simulate` shows this too.
pub fn first(
    entrance: Option<&Entrance>,
    let_in: bool,
    codes_offered: bool,
    ringing: &[PhoneNumber],
    config: &Config,
) -> Decision {
    if codes_offered && code_may_apply(entrance, let_in) {
        return Decision::AskCode;
    }
    ring::in_order(decide(entrance, let_in, ringing, config), &config.ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    fn one(number: &str) -> Vec<Entrance> {
        vec![Entrance { name: None, number: n(number), unlock_digits: "ww9".into() }]
    }

    fn config() -> Config {
        crate::config::parse(r#"{"dial_timeout": "25s", "no_answer_message": "bye"}"#, |_| None).unwrap()
    }

    #[test]
    fn strangers_are_rejected_whatever_lets_visitors_in() {
        let ic = one("+15558889999");
        for from in [Some("+15550000000"), Some("anonymous"), Some(""), None] {
            assert_eq!(caller(from, &ic), None, "{from:?}");
        }
        assert_eq!(caller(Some("+15558889999"), &[]), None, "no intercom known: everyone is a stranger");
        for let_in in [false, true] {
            assert_eq!(decide(None, let_in, &[n("+15552223333")], &config()), Decision::Reject);
            assert!(!code_may_apply(None, let_in));
        }
    }

    #[test]
    fn the_intercom_unlocks_when_let_in_and_forwards_otherwise() {
        let ic = one("+15558889999");
        let me = caller(Some("+1 555 888-9999"), &ic);
        assert!(me.is_some(), "formatting is ignored");
        let fwd = [n("+15552223333"), n("+15554445555")];
        assert_eq!(decide(me, true, &fwd, &config()), Decision::Unlock { digits: "ww9".into() });
        match decide(me, false, &fwd, &config()) {
            Decision::Forward { numbers, timeout_secs: 25, .. } => assert_eq!(numbers, fwd),
            d => panic!("{d:?}"),
        }
        assert_eq!(decide(me, false, &[], &config()), Decision::NobodyToCall { message: "bye".into() });
        assert!(code_may_apply(me, false) && !code_may_apply(me, true), "let in: no code is asked");
        assert_eq!(first(me, false, true, &fwd, &config()), Decision::AskCode);
        assert_eq!(first(me, false, true, &[], &config()), Decision::AskCode, "nobody to call: still asked");
        assert_eq!(first(me, true, true, &fwd, &config()), decide(me, true, &fwd, &config()), "no prompt");
        assert_eq!(first(None, false, true, &fwd, &config()), Decision::Reject);
    }

    #[test]
    fn each_entrance_gets_its_own_tones_and_a_third_number_is_a_stranger() {
        let gate =
            Entrance { name: Some("gate".into()), number: n("+15558880001"), unlock_digits: "9".into() };
        let door =
            Entrance { name: Some("door".into()), number: n("+15558880002"), unlock_digits: "ww1#".into() };
        let list = [gate, door];
        let unlock = |from| decide(caller(Some(from), &list), true, &[], &config());
        assert_eq!(unlock("+15558880001"), Decision::Unlock { digits: "9".into() });
        assert_eq!(unlock("+15558880002"), Decision::Unlock { digits: "ww1#".into() });
        assert_eq!(unlock("+15558880003"), Decision::Reject);
        assert_eq!(caller(Some("+1 555 888 0002"), &list).unwrap().name.as_deref(), Some("door"));
    }
}
