//! The shared vocabulary: what happened, in the words every layer uses. A call's
//! [`Decision`] and its [`CallRecord`], a [`WindowChange`], the [`EventKind`] names, and
//! the [`Record`] that the history stores, the API lists and the notifier sends.
//!
//! Plain data and the sentences that describe it: no I/O, no clock, no locks. It sits
//! below everything that produces or consumes these values (rules, state, history,
//! notify, config, listeners), so none of them needs to import another for a type.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::phone::PhoneNumber;
use crate::util::loggable;
use crate::util::time::rfc3339;

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
    /// Twilio posts the digits (or nothing) to `action`, which decides.
    AskCode {
        action: String,
    },
}

impl Decision {
    /// The word used in logs and the event history.
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Reject => "rejected",
            Decision::Unlock { .. } => "unlocked",
            Decision::Forward { .. } | Decision::NobodyToCall { .. } => "forwarded",
            Decision::AskCode { .. } => "asked for a code",
        }
    }
}

/// What a call looked like and what we answered, for the log (and the history).
#[derive(Debug)]
pub struct CallRecord {
    pub call_sid: Option<String>,
    pub from: Option<String>,
    pub decision: Decision,
}

/// One change of the window, as the state reports it to its observer (the history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowChange {
    Opened {
        until: SystemTime,
        duration: Duration,
        source: String,
    },
    Closed {
        source: String,
    },
    /// The window ended on its own; `until` is when it ended.
    Expired {
        until: SystemTime,
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
}

impl EventKind {
    pub const ALL: [EventKind; 10] = [
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
    ];
    /// What notifies when the config does not say: someone let in (by the window or a
    /// guest code), the window's opening and end, and a guesser locking the codes.
    pub const DEFAULT_NOTIFY: [EventKind; 5] = [
        EventKind::CallUnlocked,
        EventKind::WindowOpened,
        EventKind::WindowExpired,
        EventKind::CallUnlockedCode,
        EventKind::CodesLocked,
    ];

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
        }
    }

    pub fn from_name(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One line of `events.jsonl`, and one item of `GET /api/events` and of the webhook
/// notification. Unknown fields are ignored on reading, so a newer version's records
/// still show after a downgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339 UTC, whole seconds.
    pub time: String,
    pub event: EventKind,
    /// One human sentence: what the page shows and the notification says.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
    /// The caller's number as Twilio sent it (for `call_bad_signature`: as claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Who changed the window: "page from 192.168.1.20", "API from …", "CLI from …".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `window_opened`: the length asked for, in minutes (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u64>,
    /// `window_opened`: when it will end; `window_expired`: when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
    /// `call_unlocked_code`: the guest code's label (never its digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `codes_locked`: when codes are accepted again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
}

impl Record {
    pub fn new(time: SystemTime, event: EventKind, message: String) -> Record {
        Record {
            time: rfc3339(time),
            event,
            message,
            call_sid: None,
            from: None,
            source: None,
            minutes: None,
            open_until: None,
            label: None,
            locked_until: None,
        }
    }

    /// The record of an answered call.
    pub fn call(call: &CallRecord, time: SystemTime) -> Record {
        let from = call.from.as_deref().map(loggable);
        let (event, message) = match &call.decision {
            Decision::Unlock { .. } => {
                (EventKind::CallUnlocked, "Let a visitor in (window open)".to_string())
            }
            Decision::Forward { .. } => {
                (EventKind::CallForwarded, "A visitor rang: call forwarded to your phone".to_string())
            }
            Decision::NobodyToCall { .. } => {
                (EventKind::CallForwarded, "A visitor rang: nobody to forward to, window closed".to_string())
            }
            // Not recorded by the webhook (the keypad entry decides); named for completeness.
            Decision::AskCode { .. } => {
                (EventKind::CallForwarded, "A visitor rang: asked for a guest code".to_string())
            }
            Decision::Reject => (
                EventKind::CallRejected,
                format!("Rejected a call from {}", from.as_deref().unwrap_or("an unknown number")),
            ),
        };
        Record { call_sid: call.call_sid.as_deref().map(loggable), from, ..Record::new(time, event, message) }
    }

    /// A webhook refused for its signature, with the call parameters it claimed (already
    /// made loggable by the caller: they are unauthenticated).
    pub fn bad_signature(call_sid: Option<String>, from: Option<String>, time: SystemTime) -> Record {
        let message = format!(
            "Refused a call with a bad Twilio signature (claiming to be from {})",
            from.as_deref().unwrap_or("nobody")
        );
        Record { call_sid, from, ..Record::new(time, EventKind::CallBadSignature, message) }
    }

    /// A visitor let in by a guest code: the label says whose, the digits are never kept.
    pub fn code_unlocked(call: &CallRecord, label: &str, time: SystemTime) -> Record {
        let label = loggable(label);
        Record {
            call_sid: call.call_sid.as_deref().map(loggable),
            from: call.from.as_deref().map(loggable),
            message: format!("Let a visitor in with the guest code \"{label}\""),
            label: Some(label),
            ..Record::new(time, EventKind::CallUnlockedCode, String::new())
        }
    }

    /// Wrong digits on the keypad (which digits is not kept).
    pub fn code_rejected(call: &CallRecord, time: SystemTime) -> Record {
        Record {
            call_sid: call.call_sid.as_deref().map(loggable),
            from: call.from.as_deref().map(loggable),
            ..Record::new(time, EventKind::CodeRejected, "A wrong guest code was entered".to_string())
        }
    }

    pub fn codes_locked(until: SystemTime, time: SystemTime) -> Record {
        let minutes = until.duration_since(time).unwrap_or_default().as_secs().div_ceil(60);
        let message = format!("Too many wrong guest codes: codes are locked for {minutes} minutes");
        Record { locked_until: Some(rfc3339(until)), ..Record::new(time, EventKind::CodesLocked, message) }
    }

    pub fn window(change: &WindowChange, time: SystemTime) -> Record {
        match change {
            WindowChange::Opened { until, duration, source } => {
                let minutes = duration.as_secs().div_ceil(60);
                let length = humantime::format_duration(Duration::from_secs(minutes * 60));
                Record {
                    source: Some(source.clone()),
                    minutes: Some(minutes),
                    open_until: Some(rfc3339(*until)),
                    ..Record::new(
                        time,
                        EventKind::WindowOpened,
                        format!("Window opened for {length} by {source}"),
                    )
                }
            }
            WindowChange::Closed { source } => Record {
                source: Some(source.clone()),
                ..Record::new(time, EventKind::WindowClosed, format!("Window closed by {source}"))
            },
            WindowChange::Expired { until } => Record {
                open_until: Some(rfc3339(*until)),
                ..Record::new(
                    time,
                    EventKind::WindowExpired,
                    "Window ended: calls ring your phone again".to_string(),
                )
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("call_opened"), None);
    }

    #[test]
    fn window_records_carry_source_minutes_and_end() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let opened = Record::window(
            &WindowChange::Opened {
                until: t + Duration::from_secs(5400),
                duration: Duration::from_secs(5400),
                source: "page from 192.168.1.20".into(),
            },
            t,
        );
        assert_eq!(opened.event, EventKind::WindowOpened);
        assert_eq!(opened.minutes, Some(90));
        assert_eq!(opened.message, "Window opened for 1h 30m by page from 192.168.1.20");
        assert_eq!(opened.open_until.as_deref(), Some("1970-01-12T15:16:40Z"));
        let expired = Record::window(&WindowChange::Expired { until: t }, t);
        assert_eq!(expired.event, EventKind::WindowExpired);
    }
}
