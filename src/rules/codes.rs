//! Guest codes: the rules, pure (no I/O, no clock: times come in as arguments).
//!
//! A code is 6 digits with a label, an end and a number of uses. These functions decide
//! whether a call is offered the keypad prompt, whether entered digits are a right code,
//! and when too many wrong codes lock codes for a while. `store/codes.rs` keeps them on
//! disk; the listeners ask these functions what to do.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use crate::model::api::{CodeBody, NewCodeRequest};
use crate::util::time::between;

/// Six digits: 10^6 possibilities; with the lockout below that is years of guessing
/// (SECURITY.md has the arithmetic), and still quick to type on a door panel.
pub const CODE_DIGITS: usize = 6;
/// At most this many codes at once: bounds the file and, above all, the chance that a
/// random guess hits some code (MAX_ACTIVE / 10^6 per guess).
pub const MAX_ACTIVE: usize = 20;
/// The longest validity: one week (a holiday flat-sitter), in minutes.
pub const MAX_MINUTES: u64 = 7 * 24 * 60;
/// The most uses of one code: a week of daily visits with some slack.
pub const MAX_USES: u32 = 20;
/// A label is a name on a phone screen ("plumber"), not a note.
pub const MAX_LABEL_CHARS: usize = 40;
/// Wrong codes within [`FAILURE_WINDOW`] that lock codes.
pub const MAX_FAILURES: usize = 5;
/// 15 minutes: a visitor who mistypes twice is not locked out, a guesser is slowed down.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long codes are neither offered nor accepted after a lock.
pub const LOCK: Duration = Duration::from_secs(15 * 60);
/// What a new code gets when the request does not say.
pub const DEFAULT_MINUTES: u64 = 24 * 60;
pub const DEFAULT_LABEL: &str = "guest";
/// A stored end further away than the longest validity plus this means the clock went
/// back (a Pi has no real-time clock): the code is not accepted until it makes sense. A
/// minute covers a code made on a clock slightly ahead of this one.
const VALIDITY_SLACK: Duration = Duration::from_secs(60);

/// One guest code. `Debug` hides the digits, so a stray `{:?}` cannot log them.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    pub id: String,
    pub digits: String,
    pub label: String,
    /// Whole seconds: the code works while now is before it.
    pub valid_until: Timestamp,
    pub uses_left: u32,
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "Code {{ id: {:?}, label: {:?}, valid_until: {}, uses_left: {} }}",
            self.id, self.label, self.valid_until, self.uses_left
        )
    }
}

impl Code {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.uses_left > 0
            && now < self.valid_until
            && between(now, self.valid_until) <= Duration::from_secs(MAX_MINUTES * 60) + VALIDITY_SLACK
    }

    /// Used up or past its end: gone for good (a code from a backward clock is kept).
    pub fn is_spent(&self, now: Timestamp) -> bool {
        self.uses_left == 0 || now >= self.valid_until
    }

    /// The API's view, with the digits so the page can share the code again.
    pub fn body(&self, now: Timestamp) -> CodeBody {
        CodeBody {
            id: self.id.clone(),
            code: self.digits.clone(),
            label: self.label.clone(),
            valid_until: self.valid_until,
            remaining_seconds: between(now, self.valid_until).as_secs(),
            uses_left: self.uses_left,
        }
    }
}

/// Recent wrong codes and the lock they cause. Global: every call comes from the same
/// intercom number, so there is nobody else to pin a lock on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lockout {
    /// The wrong codes in the current window (at most MAX_FAILURES), in whole seconds.
    pub failures: Vec<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

impl Lockout {
    /// Whether codes are locked now. A lock that ends further than [`LOCK`] away
    /// means the clock went back; it still locks (fail closed), and [`Lockout::settle`]
    /// cuts it to a fresh lock.
    pub fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|u| now < u)
    }

    /// Forgets what the clock made meaningless: ended locks, old failures, and anything
    /// so far in the future that only a backward clock explains (cut to a fresh lock).
    pub fn settle(&mut self, now: Timestamp) {
        match self.locked_until {
            Some(u) if u <= now => self.locked_until = None,
            Some(u) if between(now, u) > LOCK => self.locked_until = Some(now + LOCK),
            _ => {}
        }
        self.failures.retain(|&t| t.duration_since(now).unsigned_abs() < FAILURE_WINDOW);
    }

    /// Counts a wrong code; returns true if it is the one that locks codes.
    pub fn fail(&mut self, now: Timestamp) -> bool {
        self.settle(now);
        self.failures.push(now);
        let locks = self.failures.len() >= MAX_FAILURES;
        if locks {
            self.failures.clear();
            self.locked_until = Some(now + LOCK);
        }
        locks
    }
}

/// Whether a call from the intercom, with the window closed, gets the keypad prompt:
/// only when some code could be accepted. Otherwise the flow is exactly as without codes.
pub fn offer(window_open: bool, codes: &[Code], lockout: &Lockout, now: Timestamp) -> bool {
    !window_open && !lockout.is_locked(now) && codes.iter().any(|c| c.is_active(now))
}

/// What entered digits amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Nothing entered (the visitor waited): forward.
    Empty,
    /// Codes are locked or none is active: the digits are not even compared.
    NotAccepted,
    /// The index of the active code that matches.
    Right(usize),
    Wrong,
}

pub fn attempt(codes: &[Code], lockout: &Lockout, digits: &str, now: Timestamp) -> Attempt {
    if digits.is_empty() {
        return Attempt::Empty;
    }
    if lockout.is_locked(now) || !codes.iter().any(|c| c.is_active(now)) {
        return Attempt::NotAccepted;
    }
    // Every active code is compared, each in constant time, so the time taken says
    // nothing about which code (or which digits) came close.
    let mut found = None;
    for (i, c) in codes.iter().enumerate() {
        if crate::util::constant_time_eq(c.digits.as_bytes(), digits.as_bytes()) && c.is_active(now) {
            found = Some(i);
        }
    }
    found.map_or(Attempt::Wrong, Attempt::Right)
}

/// Random bytes drawn for a code's digits: their 32 hex digits hold at least
/// [`CODE_DIGITS`] decimal ones in all but one draw in ten million.
pub const DIGITS_RANDOM_BYTES: usize = 16;

/// A code's digits from random hex: its first [`CODE_DIGITS`] decimal digits, or None
/// (too few) to draw again. A hex digit is uniform over 16 values, so one that is below
/// 10 is uniform over 10: no digit is favoured.
pub fn digits_from(random_hex: String) -> Option<String> {
    let digits: String = random_hex.chars().filter(char::is_ascii_digit).take(CODE_DIGITS).collect();
    (digits.len() == CODE_DIGITS).then_some(digits)
}

/// A code as asked for through the API, already checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    pub label: String,
    pub minutes: u64,
    pub uses: u32,
}

/// Checks a request for a new code (every field optional); the error names the field and
/// the rule.
pub fn check_new(req: &NewCodeRequest) -> Result<NewCode, String> {
    let label = req.label.as_deref().map_or(Ok(DEFAULT_LABEL.into()), check_label)?;
    let minutes = req.minutes.unwrap_or(DEFAULT_MINUTES);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(format!("minutes must be a whole number from 1 to {MAX_MINUTES}"));
    }
    let uses = req.uses.unwrap_or(1);
    if !(1..=u64::from(MAX_USES)).contains(&uses) {
        return Err(format!("uses must be a whole number from 1 to {MAX_USES}"));
    }
    Ok(NewCode { label, minutes, uses: uses as u32 })
}

/// 1 to 40 printable characters, not only spaces; returned trimmed.
pub fn check_label(label: &str) -> Result<String, String> {
    let trimmed = label.trim();
    let count = trimmed.chars().count();
    if count == 0 || count > MAX_LABEL_CHARS || trimmed.chars().any(char::is_control) {
        return Err(format!("label must be 1 to {MAX_LABEL_CHARS} printable characters"));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api::read_request;

    /// Reads and checks a request body, as `POST /api/codes` does.
    fn parse_new(body: &[u8]) -> Result<NewCode, String> {
        check_new(&read_request(body)?)
    }

    const NOW_SECS: u64 = 1_800_000_000;

    fn at(n: u64) -> Timestamp {
        Timestamp::from_second(n as i64).unwrap()
    }

    fn code(digits: &str, until: Timestamp, uses: u32) -> Code {
        Code {
            id: "c1".into(),
            digits: digits.into(),
            label: "plumber".into(),
            valid_until: until,
            uses_left: uses,
        }
    }

    #[test]
    fn offered_only_with_an_active_code_a_closed_window_and_no_lock() {
        let active = [code("123456", at(NOW_SECS + 60), 1)];
        let none = Lockout::default();
        assert!(offer(false, &active, &none, at(NOW_SECS)));
        assert!(!offer(true, &active, &none, at(NOW_SECS)), "an open window unlocks at once");
        assert!(!offer(false, &[], &none, at(NOW_SECS)), "no codes: exactly today's flow");
        assert!(!offer(false, &[code("123456", at(NOW_SECS), 1)], &none, at(NOW_SECS)), "expired");
        assert!(!offer(false, &[code("123456", at(NOW_SECS + 60), 0)], &none, at(NOW_SECS)), "used up");
        let far = at(NOW_SECS + MAX_MINUTES * 60 + 3600);
        assert!(!offer(false, &[code("123456", far, 1)], &none, at(NOW_SECS)), "a clock that went back");
        let locked = Lockout { failures: vec![], locked_until: Some(at(NOW_SECS + 1)) };
        assert!(!offer(false, &active, &locked, at(NOW_SECS)));
        assert!(offer(false, &active, &locked, at(NOW_SECS + 1)), "the lock ends");
    }

    #[test]
    fn attempts() {
        let codes = [
            code("111111", at(NOW_SECS - 1), 1),
            code("123456", at(NOW_SECS + 60), 0),
            code("654321", at(NOW_SECS + 60), 2),
        ];
        let none = Lockout::default();
        assert_eq!(attempt(&codes, &none, "", at(NOW_SECS)), Attempt::Empty);
        assert_eq!(attempt(&codes, &none, "654321", at(NOW_SECS)), Attempt::Right(2));
        assert_eq!(attempt(&codes, &none, "111111", at(NOW_SECS)), Attempt::Wrong, "expired");
        assert_eq!(attempt(&codes, &none, "123456", at(NOW_SECS)), Attempt::Wrong, "used up");
        for wrong in ["654320", "65432", "6543210", "*54321", "654321#"] {
            assert_eq!(attempt(&codes, &none, wrong, at(NOW_SECS)), Attempt::Wrong, "{wrong}");
        }
        let locked = Lockout { failures: vec![], locked_until: Some(at(NOW_SECS + 60)) };
        assert_eq!(
            attempt(&codes, &locked, "654321", at(NOW_SECS)),
            Attempt::NotAccepted,
            "a lock refuses even the right code"
        );
        assert_eq!(attempt(&codes[..2], &none, "123456", at(NOW_SECS)), Attempt::NotAccepted, "none active");
    }

    #[test]
    fn five_wrong_codes_in_fifteen_minutes_lock_for_fifteen_minutes() {
        let mut l = Lockout::default();
        for i in 0..4 {
            assert!(!l.fail(at(NOW_SECS + i * 60)));
        }
        assert!(!l.is_locked(at(NOW_SECS + 240)));
        assert!(l.fail(at(NOW_SECS + 240)));
        assert!(l.is_locked(at(NOW_SECS + 240)) && l.is_locked(at(NOW_SECS + 240 + LOCK.as_secs() - 1)));
        assert!(!l.is_locked(at(NOW_SECS + 240 + LOCK.as_secs())));
        // Spread out, old failures age away and never lock.
        let mut l = Lockout::default();
        for i in 0..20 {
            assert!(!l.fail(at(NOW_SECS + i * (FAILURE_WINDOW.as_secs() / 4 + 1))), "{i}");
        }
    }

    #[test]
    fn a_backward_clock_keeps_a_lock_but_only_for_one_lock_length() {
        let mut l = Lockout {
            failures: vec![at(NOW_SECS + 10 * 86_400)],
            locked_until: Some(at(NOW_SECS + 10 * 86_400)),
        };
        assert!(l.is_locked(at(NOW_SECS)));
        l.settle(at(NOW_SECS));
        assert_eq!(l.locked_until, Some(at(NOW_SECS + LOCK.as_secs())));
        assert!(l.failures.is_empty());
    }

    #[test]
    fn digits_are_six_and_unbiased() {
        assert_eq!(digits_from("000000".into()).as_deref(), Some("000000"));
        assert_eq!(digits_from("a1b2c3d4e5f6789".into()).as_deref(), Some("123456"));
        assert_eq!(digits_from("abcdef12345fff".into()), None);
        // Every digit turns up, about equally often.
        let mut seen = [0u32; 10];
        for _ in 0..1000 {
            let d = digits_from(crate::util::random_hex(DIGITS_RANDOM_BYTES).unwrap()).unwrap();
            d.bytes().for_each(|b| seen[usize::from(b - b'0')] += 1);
        }
        assert!(seen.iter().all(|&n| (450..=750).contains(&n)), "{seen:?}");
    }

    #[test]
    fn new_code_requests_name_the_bad_field() {
        assert_eq!(parse_new(b"").unwrap(), NewCode { label: "guest".into(), minutes: 1440, uses: 1 });
        assert_eq!(
            parse_new(br#"{"label": " plumber ", "minutes": 10080, "uses": 20}"#).unwrap(),
            NewCode { label: "plumber".into(), minutes: 10080, uses: 20 }
        );
        for (body, field) in [
            (r#"{"minutes": 0}"#, "minutes"),
            (r#"{"minutes": 10081}"#, "minutes"),
            (r#"{"minutes": 1.5}"#, "minutes"),
            (r#"{"minutes": "60"}"#, "minutes"),
            (r#"{"uses": 0}"#, "uses"),
            (r#"{"uses": 21}"#, "uses"),
            (r#"{"uses": -1}"#, "uses"),
            (r#"{"label": ""}"#, "label"),
            (r#"{"label": "   "}"#, "label"),
            (r#"{"label": "a\nb"}"#, "label"),
            (r#"{"label": 5}"#, "label"),
            ("{\"label\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", "label"),
            (r#"{"code": "123456"}"#, "code"),
            ("[1]", "object"),
            ("nope", "JSON"),
        ] {
            let e = parse_new(body.as_bytes()).unwrap_err();
            assert!(e.contains(field), "{body}: {e}");
        }
        assert!(parse_new("{\"label\": \"Ünïcødé plumber 🔧\"}".as_bytes()).is_ok());
    }

    #[test]
    fn debug_never_shows_the_digits() {
        assert!(!format!("{:?}", code("987654", at(NOW_SECS), 1)).contains("987654"));
    }
}
