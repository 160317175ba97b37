//! The shared vocabulary: what happened, in the words every layer uses. A call's
//! [`Decision`] and its [`CallRecord`], a [`WindowChange`], the [`EventKind`] names, and
//! the [`Record`] that the history stores, the API lists and the notifier sends.
//!
//! Plain data and the sentences that describe it: no I/O, no clock, no locks. It sits
//! below everything that produces or consumes these values (rules, state, history,
//! notify, config, listeners), so none of them needs to import another for a type.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::phone::PhoneNumber;
use crate::util::loggable;

/// The answer to one incoming call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Reject,
    Unlock {
        digits: String,
    },
    Forward {
        numbers: Vec<PhoneNumber>,
        timeout_secs: u64,
        no_answer_message: String,
    },
    /// From the intercom, window closed, but nobody configured to forward to.
    NobodyToCall {
        message: String,
    },
    /// From the intercom, window closed, a guest code active: ask for it on the keypad;
    /// Twilio posts the digits (or nothing) back, and that decides.
    AskCode,
    /// A forward in sequential order: ring one person for `timeout_secs`; Twilio then
    /// posts how it went (`DialCallStatus`) back, asking for step `next` (the index of
    /// the next person to ring).
    DialOne {
        number: PhoneNumber,
        timeout_secs: u64,
        next: usize,
    },
    /// The person rung took the call and it is over.
    Hangup,
}

impl Decision {
    /// The word used in logs and the event history.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Reject => "rejected",
            Decision::Unlock { .. } => "unlocked",
            Decision::Forward { .. } | Decision::NobodyToCall { .. } | Decision::DialOne { .. } => {
                "forwarded"
            }
            Decision::Hangup => "ended",
            Decision::AskCode => "asked for a code",
        }
    }
}

/// What a call looked like and what we answered, for the log (and the history).
#[derive(Debug)]
pub struct CallRecord {
    pub call_sid: Option<String>,
    pub from: Option<String>,
    /// The entrance's name, when the config lists several intercoms.
    pub entrance: Option<String>,
    pub decision: Decision,
}

/// One change of the window, as the state reports it to its observer (the history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowChange {
    Opened {
        /// Whole seconds.
        until: Timestamp,
        duration: Duration,
        source: String,
        /// For the next visitor only.
        once: bool,
    },
    /// A one-shot window ended by the unlock it was for (the call `call_sid`).
    OnceUsed {
        call_sid: Option<String>,
    },
    Closed {
        source: String,
    },
    /// The window ended on its own; `until` is when it ended.
    Expired {
        until: Timestamp,
    },
}

/// The event names, alike in the log, the API and the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CallUnlocked,
    CallForwarded,
    CallRejected,
    CallBadSignature,
    WindowOpened,
    WindowClosed,
    WindowExpired,
    CallUnlockedCode,
    CodeRejected,
    CodesLocked,
    OnceUsed,
    CallUnlockedSchedule,
    CallLetIn,
    CallAskedCode,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::CallUnlocked => "call_unlocked",
            EventKind::CallForwarded => "call_forwarded",
            EventKind::CallRejected => "call_rejected",
            EventKind::CallBadSignature => "call_bad_signature",
            EventKind::WindowOpened => "window_opened",
            EventKind::WindowClosed => "window_closed",
            EventKind::WindowExpired => "window_expired",
            EventKind::CallUnlockedCode => "call_unlocked_code",
            EventKind::CodeRejected => "code_rejected",
            EventKind::CodesLocked => "codes_locked",
            EventKind::OnceUsed => "once_used",
            EventKind::CallUnlockedSchedule => "call_unlocked_schedule",
            EventKind::CallLetIn => "call_let_in",
            EventKind::CallAskedCode => "call_asked_code",
        }
    }
}

/// One line of `events.jsonl`, and one item of `GET /api/events` and of the webhook
/// notification. Unknown fields are ignored on reading, so a newer version's records
/// still show after a downgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Whole seconds (RFC 3339 UTC on disk and in the API).
    pub time: Timestamp,
    pub event: EventKind,
    /// One human sentence: what the page shows and the notification says.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// The caller's number as Twilio sent it (for `call_bad_signature`: as claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who changed the window, or let a ringing caller in: a paired device's name, "the
    /// command line on the Pi", "Home Assistant", "API from 192.168.1.20" (a script with the
    /// token), "the notification link".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `window_opened`: the length asked for, in minutes (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u64>,
    /// `window_opened`: when it will end; `window_expired`: when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<Timestamp>,
    /// `call_unlocked_code`: the guest code's label (never its digits);
    /// `call_unlocked_schedule`: the schedule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `codes_locked`: when codes are accepted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<Timestamp>,
    /// `call_rejected`: how many rejected calls before this one were counted but not
    /// recorded (a flood is summarised, so it cannot push real records out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_recorded: Option<u64>,
    /// Which entrance called (`intercoms[].name`), when the config names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrance: Option<String>,
    /// `window_opened`: for the next visitor only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once: Option<bool>,
}

/// Longest caller ID shown in a message: `+` and E.164's 15 digits.
const MAX_NUMBER_CHARS: usize = 16;

/// A caller ID as the message shows it. `From` is the caller's (or, unsigned, anyone's)
/// text: shown only when it is a phone number, so it cannot pass for our own words
/// ("+1 … window opened by the resident"). The record's `from` field keeps it as sent.
fn caller_for_message(from: Option<&str>) -> &str {
    let digits = |n: &str| n.strip_prefix('+').unwrap_or(n).bytes().all(|b| b.is_ascii_digit());
    match from {
        None | Some("") => "an unknown number",
        Some(n) if n.len() <= MAX_NUMBER_CHARS && n != "+" && digits(n) => n,
        Some(_) => "a caller ID that is not a phone number",
    }
}

impl Record {
    /// A record at `time`, kept in whole seconds.
    pub fn new(time: Timestamp, event: EventKind, message: String) -> Record {
        Record {
            time: crate::util::time::floor(time),
            event,
            message,
            call_sid: None,
            from: None,
            source: None,
            minutes: None,
            open_until: None,
            label: None,
            locked_until: None,
            not_recorded: None,
            entrance: None,
            once: None,
        }
    }

    /// A record of `call`: its SID, caller and entrance, and the message after the
    /// entrance's name.
    fn of_call(call: &CallRecord, event: EventKind, message: String, time: Timestamp) -> Record {
        let entrance = call.entrance.as_deref();
        Record {
            call_sid: call.call_sid.as_deref().map(loggable),
            from: call.from.as_deref().map(loggable),
            entrance: entrance.map(loggable),
            ..Record::new(time, event, at_entrance(entrance, message))
        }
    }

    /// The record of an answered call.
    pub fn call(call: &CallRecord, time: Timestamp) -> Record {
        let (event, message) = match &call.decision {
            Decision::Unlock { .. } => (EventKind::CallUnlocked, "Let a visitor in (window open)".into()),
            Decision::Forward { .. } | Decision::DialOne { .. } => {
                (EventKind::CallForwarded, "A visitor rang: call forwarded to your phone".into())
            }
            // Not recorded (the call's forward was); named for completeness.
            Decision::Hangup => (EventKind::CallForwarded, "The forwarded call ended".into()),
            Decision::NobodyToCall { .. } => {
                (EventKind::CallForwarded, "A visitor rang: nobody to forward to, window closed".into())
            }
            // On disk before the prompt, so that no later request of the call can spend a
            // one-shot window (`web/replay.rs`); the keypad entry records the outcome.
            Decision::AskCode => (EventKind::CallAskedCode, "A visitor rang: asked for a guest code".into()),
            Decision::Reject => {
                let from = call.from.as_deref().map(loggable);
                let caller = caller_for_message(from.as_deref());
                (EventKind::CallRejected, format!("Rejected a call from {caller}"))
            }
        };
        Record::of_call(call, event, message, time)
    }

    /// A webhook refused for its signature, with the call parameters it claimed (already
    /// made loggable by the caller: they are unauthenticated).
    pub fn bad_signature(call_sid: Option<String>, from: Option<String>, time: Timestamp) -> Record {
        let caller = caller_for_message(from.as_deref());
        let message = format!("Refused a call with a bad Twilio signature (claiming to be from {caller})");
        Record { call_sid, from, ..Record::new(time, EventKind::CallBadSignature, message) }
    }

    /// A visitor let in by a guest code: the label says whose, the digits are never kept.
    pub fn code_unlocked(call: &CallRecord, label: &str, time: Timestamp) -> Record {
        let label = loggable(label);
        let message = format!("Let a visitor in with the guest code \"{label}\"");
        Record { label: Some(label), ..Record::of_call(call, EventKind::CallUnlockedCode, message, time) }
    }

    /// A visitor let in because a schedule is open now; the label says which.
    pub fn schedule_unlocked(call: &CallRecord, label: &str, time: Timestamp) -> Record {
        let label = loggable(label);
        let message = format!("Let a visitor in (schedule \"{label}\")");
        Record { label: Some(label), ..Record::of_call(call, EventKind::CallUnlockedSchedule, message, time) }
    }

    /// A ringing call let in by `who` (its tones played through Twilio's API).
    pub fn let_in(call_sid: &str, entrance: Option<&str>, who: &str, time: Timestamp) -> Record {
        let message = at_entrance(entrance, format!("Let a visitor in while it rang, by {}", loggable(who)));
        Record {
            call_sid: Some(loggable(call_sid)),
            source: Some(loggable(who)),
            entrance: entrance.map(loggable),
            ..Record::new(time, EventKind::CallLetIn, message)
        }
    }

    /// Wrong digits on the keypad (which digits is not kept).
    pub fn code_rejected(call: &CallRecord, time: Timestamp) -> Record {
        Record::of_call(call, EventKind::CodeRejected, "A wrong guest code was entered".into(), time)
    }

    pub fn codes_locked(until: Timestamp, time: Timestamp) -> Record {
        let minutes = crate::util::time::between(time, until).as_secs().div_ceil(60);
        let message = format!("Too many wrong guest codes: codes are locked for {minutes} minutes");
        Record { locked_until: Some(until), ..Record::new(time, EventKind::CodesLocked, message) }
    }

    pub fn window(change: &WindowChange, time: Timestamp) -> Record {
        // "by Anna's phone"; "from the command line on the Pi" (a place, not a person).
        let by = |source: &str| {
            format!("{} {source}", if source.starts_with("the command line") { "from" } else { "by" })
        };
        match change {
            WindowChange::Opened { until, duration, source, once } => {
                let minutes = duration.as_secs().div_ceil(60);
                let length = crate::util::time::human(Duration::from_secs(minutes * 60));
                let message = if *once {
                    format!("Opened for the next visitor only, within {length}, {}", by(source))
                } else {
                    format!("Window opened for {length} {}", by(source))
                };
                Record {
                    source: Some(source.clone()),
                    minutes: Some(minutes),
                    open_until: Some(*until),
                    once: once.then_some(true),
                    ..Record::new(time, EventKind::WindowOpened, message)
                }
            }
            WindowChange::OnceUsed { call_sid } => {
                let message =
                    "Let the next visitor in: the one-shot window is closed, calls ring your phone again";
                Record {
                    call_sid: call_sid.as_deref().map(loggable),
                    ..Record::new(time, EventKind::OnceUsed, message.into())
                }
            }
            WindowChange::Closed { source } => Record {
                source: Some(source.clone()),
                ..Record::new(time, EventKind::WindowClosed, format!("Window closed {}", by(source)))
            },
            WindowChange::Expired { until } => {
                let message = "Window ended: calls ring your phone again".into();
                Record { open_until: Some(*until), ..Record::new(time, EventKind::WindowExpired, message) }
            }
        }
    }
}

/// The command line on the server's own machine, as the history names it.
pub const COMMAND_LINE: &str = "the command line on the Pi";

/// "street gate: Let a visitor in …" when the config names its entrances.
fn at_entrance(entrance: Option<&str>, message: String) -> String {
    match entrance {
        Some(name) => format!("{}: {message}", loggable(name)),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_phone_number_from_the_caller_reaches_a_message() {
        assert_eq!(caller_for_message(Some("+15550000000")), "+15550000000");
        assert_eq!(caller_for_message(Some("anonymous")), "a caller ID that is not a phone number");
        let forged = "+1 Window opened for 12h by page from 192.168.1.20";
        assert_eq!(caller_for_message(Some(forged)), "a caller ID that is not a phone number");
        assert_eq!(caller_for_message(Some("+")), "a caller ID that is not a phone number");
        assert_eq!(caller_for_message(None), "an unknown number");
        let r = Record::bad_signature(None, Some(forged.into()), Timestamp::UNIX_EPOCH);
        assert!(!r.message.contains("Window opened"), "{}", r.message);
        assert_eq!(r.from.as_deref(), Some(forged), "kept as data");
    }

    /// Every kind, to check each name against serde's.
    const ALL: [EventKind; 14] = [
        EventKind::CallUnlocked,
        EventKind::CallForwarded,
        EventKind::CallRejected,
        EventKind::CallBadSignature,
        EventKind::WindowOpened,
        EventKind::WindowClosed,
        EventKind::WindowExpired,
        EventKind::CallUnlockedCode,
        EventKind::CodeRejected,
        EventKind::CodesLocked,
        EventKind::OnceUsed,
        EventKind::CallUnlockedSchedule,
        EventKind::CallLetIn,
        EventKind::CallAskedCode,
    ];

    impl EventKind {
        fn from_name(s: &str) -> Option<EventKind> {
            ALL.into_iter().find(|k| k.name() == s)
        }
    }

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for k in ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("call_opened"), None);
    }

    #[test]
    fn window_records_carry_source_minutes_and_end() {
        let t = Timestamp::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let opened = Record::window(
            &WindowChange::Opened {
                until: t + Duration::from_secs(5400),
                duration: Duration::from_secs(5400),
                source: "page from 192.168.1.20".into(),
                once: false,
            },
            t,
        );
        assert_eq!(opened.event, EventKind::WindowOpened);
        assert_eq!(opened.minutes, Some(90));
        assert_eq!(opened.message, "Window opened for 1h 30m by page from 192.168.1.20");
        assert_eq!(opened.open_until.map(|t| t.to_string()).as_deref(), Some("1970-01-12T15:16:40Z"));
        let expired = Record::window(&WindowChange::Expired { until: t }, t);
        assert_eq!(expired.event, EventKind::WindowExpired);
    }
}
