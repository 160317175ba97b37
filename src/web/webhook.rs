//! The webhook listener: Twilio's voice webhook on `/` and `/voice`, the guest-code
//! keypad answer on `/voice/code`, a dial's end on `/voice/next`, a notification's
//! one-time link on `/let-in` (`ringing.rs`), and `/healthz`.
//!
//! The only state it changes is a guest code's use count (and the wrong-code lockout),
//! through the code store, and the end of a one-shot window that it lets a visitor in
//! through (`next.rs`), both on disk before answering; which calls ring (in memory); and
//! a ringing call let in through its link, which only the link's holder can do. Each
//! decision (and each refused signature and rejected caller, at a bounded rate) is
//! appended to the history before the answer goes out. A call is decided once per route:
//! a repeat of its request (Twilio's retry, a replay) gets the same answer from
//! `replay.rs` and is neither counted nor recorded again; beyond that memory, or after a
//! restart, a call answered before is forwarded and changes nothing. Routes match
//! the raw path exactly, so no encoding trick reaches anything else; the control API does
//! not exist on this listener at all.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::config::Config;
use crate::http::{HttpError, Request, Response};
use crate::model::record::{CallRecord, Decision, EventKind, Record};
use crate::rules::{call, codes};
use crate::store::codes::{CodeStore, Tried};
use crate::store::history::{History, Outcome, APPEND_WAIT};
use crate::store::schedules::ScheduleStore;
use crate::store::state::Store;
use crate::twilio::twiml::{self, Callbacks, CODE_PATH, NEXT_PATH};
use crate::util::ratelog::{Limiter, RateLog};
use crate::util::{lock, loggable};
use crate::web::call_request::{self, Call};
use crate::web::replay::{self, Answered as Seen, Claim, Recent};
use crate::web::ringing::{Ringing, LINK_PATH};

/// A webhook body is a few hundred bytes of call parameters.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Open connections at once. Above 1,000 so that one attacking host with up to 1,000
/// connections (idle, slow, trickling or pipelining) cannot fill the cap, whatever its
/// rate of reconnecting, and genuine calls never meet a 503 (tests/it/load.rs); beyond
/// it, eviction of waiting connections still applies. Each costs a thread and a 2 KiB
/// read buffer: measured 27 MiB RSS with 1,050 connections open (see intercom.service).
pub const MAX_CONNECTIONS: usize = 1100;
/// Refused signatures recorded per minute. Anyone on the internet can send unsigned
/// webhooks; without a bound each would cost an fsync (SD card wear) and push real
/// history out of the bounded log. The rest are counted and logged, not recorded.
pub const MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE: u32 = 10;
/// Rejected callers recorded per minute. A stranger's genuine call costs them a phone
/// call, but a dialler can still make thousands; the rest are counted, and the next
/// recorded reject says how many were left out. The history also keeps the resident's
/// records when it rotates rejects away (`history.rs`).
pub const MAX_REJECT_RECORDS_PER_MINUTE: u32 = 10;
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Log lines that a caller (or a failing disk) can repeat at will, each rate-limited:
/// a flood of rejected callers, a state disk that hangs, the stores still loading.
static REJECTS_LOG: RateLog = RateLog::new();
static HANGING_DISK_LOG: RateLog = RateLog::new();
static STARTING_LOG: RateLog = RateLog::new();

mod next;

use next::LetIn;

pub struct Webhook {
    config: Arc<Config>,
    /// The stores, once they are loaded. Until then (a state disk that hangs at start)
    /// every call from the intercom is forwarded, as when the window is closed and no
    /// code is active, and nothing is recorded.
    stores: OnceLock<Stores>,
    bad_signatures: Mutex<Limiter>,
    rejects: Mutex<Limiter>,
    /// The answers of recent calls from the intercom, by route and `CallSid`.
    recent: Recent<Decision>,
    /// Every call from the intercom answered (within a bound), also before the start.
    answered: Mutex<Seen>,
}

/// What the webhook reads and writes on the state disk.
pub struct Stores {
    pub store: Arc<Store>,
    pub history: Arc<History>,
    pub codes: Arc<CodeStore>,
    pub schedules: Arc<ScheduleStore>,
    pub ringing: Arc<Ringing>,
}

/// An answered webhook: what the log says and the TwiML renders, what the history gets.
pub struct Answered {
    pub call: CallRecord,
    pub records: Vec<Record>,
    /// For an unlock: what to answer instead if its record does not reach the disk in
    /// time (the door stays shut and the call is forwarded as if the window were closed).
    pub if_unrecorded: Option<Decision>,
}

impl Webhook {
    /// A webhook that forwards every call from the intercom until [`Webhook::attach`].
    pub fn new(config: Arc<Config>) -> Webhook {
        Webhook {
            config,
            stores: OnceLock::new(),
            bad_signatures: Mutex::new(Limiter::new(RATE_WINDOW, MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE)),
            rejects: Mutex::new(Limiter::new(RATE_WINDOW, MAX_REJECT_RECORDS_PER_MINUTE)),
            recent: Recent::new(replay::MAX_REMEMBERED, replay::REMEMBER_FOR),
            answered: Mutex::new(Seen::default()),
        }
    }

    /// Serves with the stores from now on (once; a second call is ignored), knowing the
    /// calls the history says were answered before (strangers' calls spend nothing).
    pub fn attach(&self, stores: Stores) {
        match stores.history.newest(usize::MAX) {
            Ok(records) => {
                let mut answered = lock(&self.answered);
                let stranger = [EventKind::CallRejected, EventKind::CallBadSignature];
                for r in records.iter().rev().filter(|r| !stranger.contains(&r.event)) {
                    if let Some(sid) = &r.call_sid {
                        answered.note(sid, r.event != EventKind::CallAskedCode);
                    }
                }
            }
            Err(e) => log::error!(
                "could not read which calls were answered before ({e}): a replay of one may spend a one-shot window"
            ),
        }
        let _ = self.stores.set(stores);
    }

    /// The stores, or `None` while they are still loading (said in the log, bounded).
    fn stores(&self) -> Option<&Stores> {
        let stores = self.stores.get();
        if stores.is_none() {
            STARTING_LOG.error(format_args!(
                "the state disk has not answered since the start: calls are forwarded and not recorded"
            ));
        }
        stores
    }

    pub fn handle(&self, req: &Request) -> Response {
        self.route(req).unwrap_or_else(|e| e.respond(Response::text))
    }

    fn route(&self, req: &Request) -> Result<Response, HttpError> {
        let now = Timestamp::now();
        // The route a call's request came to, by the path it is known by (`/` and `/voice`
        // are one route): what [`Recent`] remembers answers by.
        let route = match (req.path.as_str(), req.method.as_str()) {
            ("/healthz", "GET" | "HEAD") => {
                return Ok(Response::text(200, "ok")
                    .with_header("Cache-Control", "no-store")
                    .with_header(crate::util::INSTANCE_HEADER, crate::util::instance_id()))
            }
            ("/healthz", _) => return Err(HttpError::MethodNotAllowed("GET, HEAD")),
            ("/" | "/voice", "GET" | "POST") => "/voice",
            ("/" | "/voice", _) => return Err(HttpError::MethodNotAllowed("GET, POST")),
            // Our Gather's action says POST; the digits never travel in a URL.
            (CODE_PATH, "POST") => CODE_PATH,
            // Our Dial's action says POST too.
            (NEXT_PATH, "POST") => NEXT_PATH,
            (CODE_PATH | NEXT_PATH, _) => return Err(HttpError::MethodNotAllowed("POST")),
            (LINK_PATH, "GET" | "HEAD" | "POST") => {
                let starting = || Response::text(503, "starting: try again in a moment");
                return Ok(self.stores().map_or_else(starting, |s| s.ringing.link_route(req)));
            }
            (LINK_PATH, _) => return Err(HttpError::MethodNotAllowed("GET, HEAD, POST")),
            _ => return Err(HttpError::NotFound),
        };
        let call = call_request::parse(&self.config, req, |call_sid, from| {
            self.record_bad_signature(Record::bad_signature(call_sid, from, now))
        })?;
        // A sequential order's next step changes nothing and records nothing, so it is
        // never remembered (and each step of one call has the same `CallSid`).
        let sid = call.call_sid.clone().filter(|_| route != NEXT_PATH);
        let forward = || call::decide(call.entrance.as_ref(), false, &call.forward_to, &self.config);
        let ticket = match sid.clone().map(|sid| self.recent.claim((route, sid), Instant::now())) {
            Some(Claim::Repeat(decision)) => return Ok(self.repeat(&call, route, &decision, "")),
            Some(Claim::Busy) => {
                return Ok(self.repeat(&call, route, &forward(), " (its first request is still undecided)"))
            }
            Some(Claim::First(_))
                if sid.as_deref().is_some_and(|s| lock(&self.answered).has(s, route == CODE_PATH)) =>
            {
                return Ok(self.repeat(&call, route, &forward(), " (answered before, so forwarded now)"))
            }
            Some(Claim::First(ticket)) => Some(ticket),
            None => None,
        };
        let answer = match route {
            NEXT_PATH => self.answer_next(&call, now)?,
            _ => self.answer(&call, route == CODE_PATH, now),
        };
        // Known to ring before its record goes out: the notification carries the link.
        self.track(&call, route, &answer.call.decision);
        let outcome = self.record(&answer); // on disk before we answer
        let Answered { call: mut record, if_unrecorded, .. } = answer;
        let logged = record.call_sid.as_deref().map_or("-".into(), loggable);
        if let (Outcome::Pending, Some(instead)) = (outcome, if_unrecorded) {
            self.track(&call, route, &instead);
            // Never open the door on a decision that is not on disk: answer as if closed.
            HANGING_DISK_LOG.error(format_args!(
                "the event log did not reach the disk within {APPEND_WAIT:?} (the disk hangs?): call {logged} is forwarded instead of unlocking"
            ));
            record.decision = instead;
        }
        // Remembered for repeats; a stranger's reject is not (it changes nothing, and
        // strangers must not push the intercom's calls out of the bounded memory).
        if record.decision != Decision::Reject {
            if let Some(sid) = &sid {
                lock(&self.answered).note(sid, record.decision != Decision::AskCode);
            }
            if let Some(ticket) = ticket {
                ticket.answer(record.decision.clone());
            }
        }
        let from = record.from.as_deref().map_or("(none)".into(), loggable);
        log::info!("call {logged} from {from}: {}", record.decision.name());
        Ok(self.twiml(&call, &record.decision))
    }

    /// The answer to a repeated request (`why` not the first's), without counting or
    /// recording anything.
    fn repeat(&self, call: &Call, route: &str, decision: &Decision, why: &str) -> Response {
        let (sid, answer) = (call.call_sid.as_deref().map_or("-".into(), loggable), decision.name());
        log::info!(
            "call {sid} repeated on {route}: answered {answer} again{why}, not counted or recorded again"
        );
        self.twiml(call, decision)
    }

    /// A dial rings the call's residents until `/voice/next` says it ended.
    fn track(&self, call: &Call, route: &str, decision: &Decision) {
        let (Some(stores), Some(sid), Some(entrance)) = (self.stores.get(), &call.call_sid, &call.entrance)
        else {
            return;
        };
        match decision {
            Decision::Forward { timeout_secs, .. } | Decision::DialOne { timeout_secs, .. } => {
                stores.ringing.ring(sid, entrance, Duration::from_secs(*timeout_secs))
            }
            _ if route == NEXT_PATH => stores.ringing.ended(sid, *decision == Decision::Hangup),
            _ => {}
        }
    }

    /// The TwiML answer to `call`: its action URLs on our public URL, carrying the
    /// call's overrides.
    fn twiml(&self, call: &Call, decision: &Decision) -> Response {
        let base = self.config.webhook.public_url.as_deref().unwrap_or("");
        let xml = twiml::render(decision, &Callbacks { base, carry: &call.overrides, dial_action: true });
        Response::new(200, "text/xml; charset=utf-8", xml).with_header("Cache-Control", "no-store")
    }

    /// `/voice` decides an authenticated call; `/voice/code` (`keypad`) is the answer to
    /// our Gather, with the digits. The caller and the window are checked again first (a
    /// stranger's digits are never compared), and a right code's use is on disk before
    /// the door opens.
    fn answer(&self, call: &Call, keypad: bool, now: Timestamp) -> Answered {
        let ringing = self.ringing(call, now);
        let let_in = self.lets_in(call, now);
        let open = !matches!(let_in, LetIn::No);
        let stores = self.stores();
        let tried = match (keypad && call::code_may_apply(call.entrance.as_ref(), open), stores) {
            (true, Some(stores)) => {
                let digits = call.digits.as_deref().unwrap_or("");
                stores.codes.try_code(digits, call.call_sid.as_deref(), now).unwrap_or_else(|e| {
                    log::error!("could not save the use of a guest code ({e}); forwarding the call instead");
                    Tried::NotAccepted
                })
            }
            _ => Tried::NotAccepted,
        };
        let offered = !keypad && stores.is_some_and(|s| s.codes.offer(open, now));
        let first =
            |let_in, offered| call::first(call.entrance.as_ref(), let_in, offered, &ringing, &self.config);
        // A right code lets in what would have been forwarded.
        let decision = first(open || matches!(tried, Tried::Right { .. }), offered);
        let if_unrecorded = matches!(decision, Decision::Unlock { .. }).then(|| first(false, false));
        let record = call.answered(decision);
        let records = match &tried {
            Tried::Right { label } => vec![Record::code_unlocked(&record, label, now)],
            Tried::Wrong { locked } => {
                let mut r = vec![Record::code_rejected(&record, now)];
                if *locked {
                    r.push(Record::codes_locked(crate::util::time::floor(now) + codes::LOCK, now));
                }
                r.push(Record::call(&record, now));
                r
            }
            // An unlock by schedule names the schedule.
            Tried::Empty | Tried::NotAccepted => vec![match (&let_in, &record.decision) {
                (LetIn::Schedule(label), Decision::Unlock { .. }) => {
                    Record::schedule_unlocked(&record, label, now)
                }
                _ => Record::call(&record, now),
            }],
        };
        Answered { call: record, records, if_unrecorded }
    }

    /// Writes an answered call's history entries; `Pending` if any of them is not on disk
    /// in time. A rejected caller is recorded at a bounded rate: the first admitted after
    /// a flood says how many were left out.
    fn record(&self, answered: &Answered) -> Outcome {
        let mut records = answered.records.clone();
        if answered.call.decision == Decision::Reject {
            match lock(&self.rejects).admit(Instant::now()) {
                Some(0) => {}
                Some(left_out) => {
                    for r in &mut records {
                        r.not_recorded = Some(left_out);
                        r.message.push_str(&format!(
                            " ({left_out} more rejected calls before it were not recorded)"
                        ));
                    }
                }
                None => {
                    REJECTS_LOG.warn(format_args!(
                        "more than {MAX_REJECT_RECORDS_PER_MINUTE} rejected calls a minute: the rest are counted, not recorded"
                    ));
                    return Outcome::Written;
                }
            }
        }
        // Nothing can be on disk yet: an unlock (there can be none) would be forwarded.
        let Some(stores) = self.stores() else { return Outcome::Pending };
        // Every record is written, also after one that is pending.
        let outcomes: Vec<Outcome> = records.iter().map(|r| stores.history.record(r)).collect();
        outcomes.into_iter().find(|o| *o == Outcome::Pending).unwrap_or(Outcome::Written)
    }

    fn record_bad_signature(&self, record: Record) {
        let Some(suppressed) = lock(&self.bad_signatures).admit(Instant::now()) else { return };
        if suppressed > 0 {
            log::warn!("{suppressed} more refused signatures were not recorded in the history");
        }
        if let Some(stores) = self.stores() {
            stores.history.record(&record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_signatures_are_recorded_at_a_bounded_rate() {
        let start = Instant::now();
        let mut w = Limiter::new(RATE_WINDOW, MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE);
        let admitted = (0..100).filter(|_| w.admit(start).is_some()).count();
        assert_eq!(admitted, MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE as usize);
        assert_eq!(w.admit(start + RATE_WINDOW), Some(90), "a new minute starts afresh");
    }
}
