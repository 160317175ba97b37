//! The webhook listener: Twilio's voice webhook on `/` and `/voice`, the guest-code
//! keypad answer on `/voice/code`, and `/healthz`.
//!
//! Nothing here changes the window; the only state it changes is a guest code's use
//! count (and the wrong-code lockout), through the code store, before answering. Each
//! decision (and each refused signature, at a bounded rate) is appended to the history
//! before the answer goes out. Routes match
//! the raw path exactly, so no encoding trick reaches anything else; the control API does
//! not exist on this listener at all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::http::form::{self, Params};
use crate::http::{HttpError, Request, Response};
use crate::model::phone::PhoneNumber;
use crate::model::record::{CallRecord, Decision, Record};
use crate::rules::call::{self, CallRules};
use crate::rules::codes;
use crate::store::codes::{CodeStore, Tried};
use crate::store::history::{History, Outcome, APPEND_WAIT};
use crate::store::state::Store;
use crate::util::ratelog::{Limiter, RateLog};
use crate::{twilio::signature, twilio::twiml, util::lock, util::loggable};

/// A webhook body is a few hundred bytes of call parameters.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Open connections at once. Above 1,000 so that one attacking host with up to 1,000
/// connections (idle, slow, trickling or pipelining) cannot fill the cap, whatever its
/// rate of reconnecting, and genuine calls never meet a 503 (tests/it/load.rs); beyond
/// it, eviction of waiting connections still applies. Each costs a thread and a 2 KiB
/// read buffer: measured 27 MiB RSS with 1,050 connections open (see intercom.service).
pub const MAX_CONNECTIONS: usize = 1100;
const FORM_TYPE: &str = "application/x-www-form-urlencoded";
/// Where our keypad prompt sends the digits.
pub const CODE_PATH: &str = "/voice/code";
/// Refused signatures recorded per minute. Anyone on the internet can send unsigned
/// webhooks; without a bound each would cost an fsync (SD card wear) and push real
/// history out of the bounded log. The rest are counted and logged, not recorded.
pub const MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE: u32 = 10;
const RATE_WINDOW: Duration = Duration::from_secs(60);

pub struct Webhook {
    config: Arc<Config>,
    store: Arc<Store>,
    history: Arc<History>,
    codes: Arc<CodeStore>,
    bad_signatures: Mutex<Limiter>,
    bad_signature_log: RateLog,
    hanging_disk_log: RateLog,
}

/// An answered webhook: what the log says, what the history gets, the TwiML.
pub struct Answered {
    pub call: CallRecord,
    pub records: Vec<Record>,
    pub xml: String,
    /// For an unlock: what to answer instead if its record does not reach the disk in
    /// time (the door stays shut and the call is forwarded as if the window were closed).
    pub if_unrecorded: Option<Decision>,
}

/// A call's parameters, authenticated, and the numbers that apply to it.
struct Call {
    from: Option<String>,
    call_sid: Option<String>,
    digits: Option<String>,
    expected: Option<PhoneNumber>,
    forward_to: Vec<PhoneNumber>,
}

impl Webhook {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        history: Arc<History>,
        codes: Arc<CodeStore>,
    ) -> Webhook {
        let bad_signatures = Mutex::new(Limiter::new(RATE_WINDOW, MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE));
        Webhook {
            config,
            store,
            history,
            codes,
            bad_signatures,
            bad_signature_log: RateLog::new(),
            hanging_disk_log: RateLog::new(),
        }
    }

    pub fn handle(&self, req: &Request) -> Response {
        match self.route(req) {
            Ok(resp) => resp,
            Err(Refused::Http(e)) => e.decorate(Response::text(e.status(), &e.message())),
            Err(Refused::BadSignature) => Response::text(403, "forbidden"),
        }
    }

    fn route(&self, req: &Request) -> Result<Response, Refused> {
        let now = SystemTime::now();
        let answer = match (req.path.as_str(), req.method.as_str()) {
            ("/healthz", "GET" | "HEAD") => {
                return Ok(Response::text(200, "ok")
                    .with_header("Cache-Control", "no-store")
                    .with_header(crate::util::INSTANCE_HEADER, crate::util::instance_id()))
            }
            ("/healthz", _) => return Err(HttpError::MethodNotAllowed("GET, HEAD").into()),
            ("/" | "/voice", "GET" | "POST") => self.answer_call(req, now),
            ("/" | "/voice", _) => return Err(HttpError::MethodNotAllowed("GET, POST").into()),
            // Our Gather's action says POST; the digits never travel in a URL.
            (CODE_PATH, "POST") => self.answer_code(req, now),
            (CODE_PATH, _) => return Err(HttpError::MethodNotAllowed("POST").into()),
            _ => return Err(HttpError::NotFound.into()),
        };
        let outcome = self.record(req, &answer, now); // on disk before we answer
        let Answered { mut call, mut xml, if_unrecorded, .. } = answer?;
        if let (Outcome::Pending, Some(instead)) = (outcome, if_unrecorded) {
            // Never open the door on a decision that is not on disk: answer as if closed.
            self.hanging_disk_log.error(format_args!(
                "the event log did not reach the disk within {APPEND_WAIT:?} (the disk hangs?): call {} is forwarded instead of unlocking",
                call.call_sid.as_deref().map_or("-".into(), loggable)
            ));
            xml = twiml::render(&instead);
            call.decision = instead;
        }
        log::info!(
            "call {} from {}: {}",
            call.call_sid.as_deref().map_or("-".into(), loggable),
            call.from.as_deref().map_or("(none)".into(), loggable),
            call.decision.name()
        );
        Ok(Response::new(200, "text/xml; charset=utf-8", xml).with_header("Cache-Control", "no-store"))
    }

    /// `/voice`: parses and authenticates the call, then decides. Errors mean no TwiML.
    pub fn answer_call(&self, req: &Request, now: SystemTime) -> Result<Answered, Refused> {
        let call = self.parse_call(req)?;
        let rules = CallRules::new(&self.config, call.expected.as_ref(), &call.forward_to);
        let open = self.window_open(now);
        let offered = self.codes.offer(open, now);
        let decision = first_decision(&self.config, &rules, call.from.as_deref(), open, offered, &req.query);
        let if_unrecorded = unlocks(&decision).then(|| call::decide(call.from.as_deref(), false, &rules));
        let record = CallRecord { call_sid: call.call_sid, from: call.from, decision };
        // A prompt is not an outcome: `/voice/code` records how the call ends.
        let records = match record.decision {
            Decision::AskCode { .. } => Vec::new(),
            _ => vec![Record::call(&record, now)],
        };
        Ok(Answered { xml: twiml::render(&record.decision), call: record, records, if_unrecorded })
    }

    /// `/voice/code`: the keypad digits from our Gather. The caller and the window are
    /// checked again first (a stranger's digits are never compared), and a right code's
    /// use is on disk before the door opens.
    pub fn answer_code(&self, req: &Request, now: SystemTime) -> Result<Answered, Refused> {
        let call = self.parse_call(req)?;
        let rules = CallRules::new(&self.config, call.expected.as_ref(), &call.forward_to);
        let open = self.window_open(now);
        let decision = call::decide(call.from.as_deref(), open, &rules);
        let tried = if call::code_may_apply(&decision) {
            self.codes.try_code(call.digits.as_deref().unwrap_or(""), now).unwrap_or_else(|e| {
                log::error!("could not save the use of a guest code ({e}); forwarding the call instead");
                Tried::NotAccepted
            })
        } else {
            Tried::NotAccepted
        };
        let if_unrecorded = matches!(tried, Tried::Right { .. }).then(|| decision.clone());
        let decision = call::after_code(decision, matches!(tried, Tried::Right { .. }), &rules);
        let record = CallRecord { call_sid: call.call_sid, from: call.from, decision };
        let records = match &tried {
            Tried::Right { label } => vec![Record::code_unlocked(&record, label, now)],
            Tried::Wrong { locked } => {
                let mut r = vec![Record::code_rejected(&record, now)];
                if *locked {
                    r.push(Record::codes_locked(now + Duration::from_secs(codes::LOCK_SECS), now));
                }
                r.push(Record::call(&record, now));
                r
            }
            Tried::Empty | Tried::NotAccepted => vec![Record::call(&record, now)],
        };
        Ok(Answered { xml: twiml::render(&record.decision), call: record, records, if_unrecorded })
    }

    /// Whether the window is open; closed if the state's lock is held past
    /// [`crate::util::LOCK_WAIT`] (a state write hangs on the disk), so the call is forwarded.
    fn window_open(&self, now: SystemTime) -> bool {
        match self.store.status_within(now, crate::util::LOCK_WAIT) {
            Some(status) => status.is_open(),
            None => {
                self.hanging_disk_log.error(format_args!(
                    "the window state is locked by a write that hangs (the disk?): the call is forwarded"
                ));
                false
            }
        }
    }

    fn parse_call(&self, req: &Request) -> Result<Call, Refused> {
        let query =
            form::parse(req.query.as_bytes()).map_err(|e| HttpError::BadRequest(format!("query: {e}")))?;
        let body = if req.method == "POST" { post_params(req)? } else { Vec::new() };
        self.check_signature(req, &body)?;

        // Twilio puts the call's parameters in the body for POST and the query for GET.
        let call_params = if req.method == "POST" { &body } else { &query };
        let owned = |v: Option<&str>| v.map(str::to_string);

        // Query overrides, for Twilio setups that already pass them in the webhook URL.
        let expected = match one(&query, "ExpectedFrom")? {
            Some(n) => Some(parse_number("ExpectedFrom", n)?),
            None => self.config.intercom_number.clone(),
        };
        let forward_to = match one(&query, "PhoneNumberToDial")? {
            Some(list) => {
                list.split(',').map(|n| parse_number("PhoneNumberToDial", n)).collect::<Result<_, _>>()?
            }
            None => self.config.forward_to.clone(),
        };
        Ok(Call {
            from: owned(one(call_params, "From")?),
            call_sid: owned(one(call_params, "CallSid")?),
            digits: owned(one(call_params, "Digits")?),
            expected,
            forward_to,
        })
    }

    fn check_signature(&self, req: &Request, post_params: &Params) -> Result<(), Refused> {
        let (Some(token), Some(public_url)) =
            (&self.config.twilio.auth_token, &self.config.webhook.public_url)
        else {
            return Ok(()); // unchecked: warned about at every start
        };
        let mut url = format!("{public_url}{}", req.path);
        if !req.query.is_empty() {
            url.push('?');
            url.push_str(&req.query);
        }
        let valid = req
            .header("x-twilio-signature")
            .is_some_and(|sig| signature::verify(token.expose(), &url, post_params, sig));
        if valid {
            return Ok(());
        }
        let forwarded = req.header("x-forwarded-for").map(|f| format!(" (X-Forwarded-For {})", loggable(f)));
        self.bad_signature_log.warn(format_args!(
            "refused a webhook {} {} from {}{} with a missing or invalid X-Twilio-Signature",
            req.method,
            loggable(&req.path),
            req.peer,
            forwarded.unwrap_or_default()
        ));
        Err(Refused::BadSignature)
    }

    /// The history entries for an answered (or refused) webhook call, if it is one;
    /// `Pending` if any of them is not on disk in time.
    fn record(&self, req: &Request, answer: &Result<Answered, Refused>, time: SystemTime) -> Outcome {
        match answer {
            Ok(answered) => {
                let outcomes: Vec<Outcome> =
                    answered.records.iter().map(|r| self.history.record(r)).collect();
                if outcomes.contains(&Outcome::Pending) {
                    return Outcome::Pending;
                }
            }
            Err(Refused::BadSignature) => {
                let admitted = lock(&self.bad_signatures).admit(Instant::now());
                if let Some(suppressed) = admitted {
                    if suppressed > 0 {
                        log::warn!("{suppressed} more refused signatures were not recorded in the history");
                    }
                    self.history.record(&bad_signature(req, time));
                }
            }
            Err(_) => {} // malformed: no decision was made
        }
        Outcome::Written
    }
}

/// Why a webhook request got no TwiML: the HTTP layer's reasons, or a signature that
/// is missing or wrong (recorded in the history at a bounded rate).
pub enum Refused {
    Http(HttpError),
    BadSignature,
}

impl From<HttpError> for Refused {
    fn from(e: HttpError) -> Refused {
        Refused::Http(e)
    }
}

/// The answer on `/voice` for a caller: the rules' decision, or the keypad prompt when
/// guest codes are offered. `intercom simulate` calls this too, so it prints what the
/// webhook would answer.
pub fn first_decision(
    config: &Config,
    rules: &CallRules,
    from: Option<&str>,
    window_open: bool,
    codes_offered: bool,
    query: &str,
) -> Decision {
    let decision = call::decide(from, window_open, rules);
    call::with_code_prompt(decision, codes_offered, &code_action(config, query))
}

/// Where Twilio posts the digits: `public_url` + `/voice/code` (relative without it),
/// keeping the request's number overrides so a wrong code forwards the same way.
fn code_action(config: &Config, query: &str) -> String {
    let base = config.webhook.public_url.as_deref().unwrap_or("");
    let overrides: Vec<&str> = query
        .split('&')
        .filter(|p| matches!(p.split('=').next(), Some("ExpectedFrom" | "PhoneNumberToDial")))
        .collect();
    if overrides.is_empty() {
        format!("{base}{CODE_PATH}")
    } else {
        format!("{base}{CODE_PATH}?{}", overrides.join("&"))
    }
}

fn unlocks(decision: &Decision) -> bool {
    matches!(decision, Decision::Unlock { .. })
}

/// A webhook refused for its signature. Its parameters are unauthenticated claims,
/// kept (bounded, without control characters) because they help to spot a prober.
fn bad_signature(req: &Request, time: SystemTime) -> Record {
    let source = if req.method == "POST" { req.body.as_slice() } else { req.query.as_bytes() };
    let params = form::parse(source).unwrap_or_default();
    let get = |name| form::single(&params, name).ok().flatten().map(loggable);
    Record::bad_signature(get("CallSid"), get("From"), time)
}

fn one<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, HttpError> {
    form::single(params, name).map_err(HttpError::BadRequest)
}

fn post_params(req: &Request) -> Result<Params, HttpError> {
    if req.body.is_empty() {
        return Ok(Vec::new());
    }
    let content_type = req.header("content-type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(FORM_TYPE) {
        return Err(HttpError::UnsupportedMediaType(FORM_TYPE));
    }
    form::parse(&req.body).map_err(|e| HttpError::BadRequest(format!("body: {e}")))
}

fn parse_number(param: &str, value: &str) -> Result<PhoneNumber, HttpError> {
    PhoneNumber::parse(value).map_err(|m| HttpError::BadRequest(format!("query parameter {param}: {m}")))
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
