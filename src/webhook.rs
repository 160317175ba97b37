//! The webhook listener: Twilio's voice webhook on `/` and `/voice`, and `/healthz`.
//!
//! Nothing here changes the window; each decision (and each refused signature, at a
//! bounded rate) is only appended to the history before the answer goes out. Routes match
//! the raw path exactly, so no encoding trick reaches anything else; the control API does
//! not exist on this listener at all.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::call::{self, CallRules};
use crate::config::Config;
use crate::form::{self, Params};
use crate::history::History;
use crate::http::{HttpError, Request, Response};
use crate::phone::PhoneNumber;
use crate::record::{CallRecord, Record};
use crate::state::Store;
use crate::{lock, loggable, signature, twiml};

/// A webhook body is a few hundred bytes of call parameters.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const FORM_TYPE: &str = "application/x-www-form-urlencoded";
/// Refused signatures recorded per minute. Anyone on the internet can send unsigned
/// webhooks; without a bound each would cost an fsync (SD card wear) and push real
/// history out of the bounded log. The rest are counted and logged, not recorded.
pub const MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE: u32 = 10;
const RATE_WINDOW: Duration = Duration::from_secs(60);

pub struct Webhook {
    config: Arc<Config>,
    store: Arc<Store>,
    history: Arc<History>,
    bad_signatures: Mutex<RateWindow>,
}

impl Webhook {
    pub fn new(config: Arc<Config>, store: Arc<Store>, history: Arc<History>) -> Webhook {
        let bad_signatures = Mutex::new(RateWindow { started: Instant::now(), recorded: 0, suppressed: 0 });
        Webhook { config, store, history, bad_signatures }
    }

    pub fn handle(&self, req: &Request) -> Response {
        match self.route(req) {
            Ok(resp) => resp,
            Err(e) => e.decorate(Response::text(e.status(), &e.message())),
        }
    }

    fn route(&self, req: &Request) -> Result<Response, HttpError> {
        match (req.path.as_str(), req.method.as_str()) {
            ("/healthz", "GET" | "HEAD") => {
                Ok(Response::text(200, "ok").with_header("Cache-Control", "no-store"))
            }
            ("/healthz", _) => Err(HttpError::MethodNotAllowed("GET, HEAD")),
            ("/" | "/voice", "GET" | "POST") => {
                let now = SystemTime::now();
                let answer = self.answer_call(req, now);
                self.record(req, &answer, now); // on disk before we answer
                let (record, xml) = answer?;
                log::info!(
                    "call {} from {}: {}",
                    record.call_sid.as_deref().map_or("-".into(), loggable),
                    record.from.as_deref().map_or("(none)".into(), loggable),
                    record.decision.name()
                );
                Ok(Response::new(200, "text/xml; charset=utf-8", xml)
                    .with_header("Cache-Control", "no-store"))
            }
            ("/" | "/voice", _) => Err(HttpError::MethodNotAllowed("GET, POST")),
            _ => Err(HttpError::NotFound),
        }
    }

    /// Parses and authenticates the call, then decides. Errors mean no TwiML at all.
    pub fn answer_call(&self, req: &Request, now: SystemTime) -> Result<(CallRecord, String), HttpError> {
        let query =
            form::parse(req.query.as_bytes()).map_err(|e| HttpError::BadRequest(format!("query: {e}")))?;
        let body = if req.method == "POST" { post_params(req)? } else { Vec::new() };
        self.check_signature(req, &body)?;

        // Twilio puts the call's parameters in the body for POST and the query for GET.
        let call_params = if req.method == "POST" { &body } else { &query };
        let from = one(call_params, "From")?;
        let call_sid = one(call_params, "CallSid")?;

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
        let rules = CallRules::new(&self.config, expected.as_ref(), &forward_to);
        let open = self.store.status(now).is_open();
        let decision = call::decide(from, open, &rules);
        let xml = twiml::render(&decision);
        let record =
            CallRecord { call_sid: call_sid.map(str::to_string), from: from.map(str::to_string), decision };
        Ok((record, xml))
    }

    fn check_signature(&self, req: &Request, post_params: &Params) -> Result<(), HttpError> {
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
        log::warn!(
            "refused a webhook {} {} from {}{} with a missing or invalid X-Twilio-Signature",
            req.method,
            loggable(&req.path),
            req.peer,
            forwarded.unwrap_or_default()
        );
        Err(HttpError::Forbidden)
    }

    /// The history entry for an answered (or refused) webhook call, if it is one.
    fn record(&self, req: &Request, answer: &Result<(CallRecord, String), HttpError>, time: SystemTime) {
        match answer {
            Ok((call, _)) => self.history.record(&Record::call(call, time)),
            Err(HttpError::Forbidden) => {
                if lock(&self.bad_signatures).admit(Instant::now()) {
                    self.history.record(&bad_signature(req, time));
                }
            }
            Err(_) => {} // malformed: no decision was made
        }
    }
}

/// A webhook refused for its signature. Its parameters are unauthenticated claims,
/// kept (bounded, without control characters) because they help to spot a prober.
fn bad_signature(req: &Request, time: SystemTime) -> Record {
    let source = if req.method == "POST" { req.body.as_slice() } else { req.query.as_bytes() };
    let params = form::parse(source).unwrap_or_default();
    let get = |name| form::single(&params, name).ok().flatten().map(loggable);
    Record::bad_signature(get("CallSid"), get("From"), time)
}

/// Counts refused signatures in the current minute.
struct RateWindow {
    started: Instant,
    recorded: u32,
    suppressed: u32,
}

impl RateWindow {
    /// Whether one more may be recorded now; logs what was suppressed in the last minute.
    fn admit(&mut self, now: Instant) -> bool {
        if now.duration_since(self.started) >= RATE_WINDOW {
            if self.suppressed > 0 {
                log::warn!(
                    "{} more refused signatures in the last minute were not recorded in the history",
                    self.suppressed
                );
            }
            *self = RateWindow { started: now, recorded: 0, suppressed: 0 };
        }
        if self.recorded < MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE {
            self.recorded += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
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
        let mut w = RateWindow { started: start, recorded: 0, suppressed: 0 };
        let admitted = (0..100).filter(|_| w.admit(start)).count();
        assert_eq!(admitted, MAX_BAD_SIGNATURE_RECORDS_PER_MINUTE as usize);
        assert_eq!(w.suppressed, 90);
        assert!(w.admit(start + RATE_WINDOW), "a new minute starts afresh");
        assert_eq!(w.suppressed, 0);
    }
}
