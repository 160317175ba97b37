//! A webhook request as a call, parsed once: its parameters (the body for POST, the
//! query for GET), Twilio's signature checked first, the caller resolved to an entrance
//! (or a stranger), the query's number overrides and `/voice/next`'s step. Nothing here
//! decides anything; `webhook.rs` does, and nothing after this reads the request again.

use crate::config::entrances::Entrance;
use crate::config::Config;
use crate::http::form::{self, Params};
use crate::http::{HttpError, Request};
use crate::model::phone::PhoneNumber;
use crate::model::record::{CallRecord, Decision};
use crate::rules::call;
use crate::twilio::signature;
use crate::util::loggable;
use crate::util::ratelog::RateLog;

const FORM_TYPE: &str = "application/x-www-form-urlencoded";
/// The query's number overrides, for Twilio setups that already pass them in the
/// webhook URL.
const OVERRIDES: [&str; 2] = ["ExpectedFrom", "PhoneNumberToDial"];
/// A `step` beyond this is not ours: `forward_to` is a household's few phones.
pub const MAX_STEP: usize = 100;

/// A call's parameters, authenticated, resolved against the config and the overrides.
pub struct Call {
    /// The entrance calling: one of the config's intercoms, or the one a request's
    /// `ExpectedFrom` names; `None` for anyone else (a stranger).
    pub entrance: Option<Entrance>,
    /// `From` as sent: data for the log and the history, never compared again.
    pub from: Option<String>,
    pub call_sid: Option<String>,
    pub digits: Option<String>,
    /// How the dial to one person ended (Twilio's `DialCallStatus`, on `/voice/next`).
    pub dial_status: Option<String>,
    /// The config's `forward_to`, or the request's `PhoneNumberToDial`.
    pub forward_to: Vec<PhoneNumber>,
    /// The overrides the query gave (name, decoded value), in its order: our action URLs
    /// carry them, so what follows a prompt or a dial forwards the same way.
    pub overrides: Vec<(String, String)>,
    /// The query's `step` (`/voice/next`), when it is one we could have sent.
    pub step: Option<usize>,
}

impl Call {
    /// The call as the log and the history tell it, with what we answered.
    pub fn answered(&self, decision: Decision) -> CallRecord {
        let entrance = self.entrance.as_ref().and_then(|e| e.name.clone());
        CallRecord { call_sid: self.call_sid.clone(), from: self.from.clone(), entrance, decision }
    }
}

/// Parses and authenticates a call's request. Errors mean no TwiML. A signature that is
/// missing or wrong is refused (403) after `bad_signature` is told the `CallSid` and
/// `From` it claimed (unauthenticated, made loggable: kept to help spot a prober).
pub fn parse(
    config: &Config,
    req: &Request,
    bad_signature: impl FnOnce(Option<String>, Option<String>),
) -> Result<Call, HttpError> {
    let query =
        form::parse(req.query.as_bytes()).map_err(|e| HttpError::BadRequest(format!("query: {e}")))?;
    let body = if req.method == "POST" { post_params(req)? } else { Vec::new() };
    // Twilio puts the call's parameters in the body for POST and the query for GET.
    let call_params = if req.method == "POST" { &body } else { &query };
    if !signed(config, req, &body) {
        let claim = |name| form::single(call_params, name).ok().flatten().map(loggable);
        bad_signature(claim("CallSid"), claim("From"));
        return Err(HttpError::Refused("forbidden".into()));
    }
    let param = |name| form::single(call_params, name).map(|v| v.map(str::to_string));

    let expected =
        form::single(&query, "ExpectedFrom")?.map(|n| parse_number("ExpectedFrom", n)).transpose()?;
    let unlock_digits = config.unlock_digits.clone();
    let expected = expected.map(|number| Entrance { name: None, number, unlock_digits });
    // A request's `ExpectedFrom` is the one intercom it knows; else the config's.
    let intercoms = expected.as_ref().map_or(&config.intercoms[..], std::slice::from_ref);
    let numbers = |list: &str| list.split(',').map(|n| parse_number("PhoneNumberToDial", n)).collect();
    let forward_to: Option<Vec<_>> = form::single(&query, "PhoneNumberToDial")?.map(numbers).transpose()?;
    let step = form::single(&query, "step").ok().flatten().and_then(|s| s.parse().ok());
    let from = param("From")?;
    Ok(Call {
        entrance: call::caller(from.as_deref(), intercoms).cloned(),
        from,
        call_sid: param("CallSid")?,
        digits: param("Digits")?,
        dial_status: param("DialCallStatus")?,
        forward_to: forward_to.unwrap_or_else(|| config.forward_to.clone()),
        overrides: query.iter().filter(|(n, _)| OVERRIDES.contains(&n.as_str())).cloned().collect(),
        // Only `/voice/next` reads it (and refuses a request without a valid one).
        step: step.filter(|s| (1..=MAX_STEP).contains(s)),
    })
}

/// Whether the request carries Twilio's signature (said in the log, bounded, if not).
fn signed(config: &Config, req: &Request, post_params: &Params) -> bool {
    static REFUSALS: RateLog = RateLog::new();
    let (Some(token), Some(public_url)) = (&config.twilio.auth_token, &config.webhook.public_url) else {
        return true; // unchecked: warned about at every start
    };
    let sep = if req.query.is_empty() { "" } else { "?" };
    let url = format!("{public_url}{}{sep}{}", req.path, req.query);
    let given = req.header("x-twilio-signature");
    if given.is_some_and(|sig| signature::verify(token.expose(), &url, post_params, sig)) {
        return true;
    }
    let (method, path, peer) = (&req.method, loggable(&req.path), req.peer);
    let forwarded = req.header("x-forwarded-for").map(|f| format!(" (X-Forwarded-For {})", loggable(f)));
    let forwarded = forwarded.unwrap_or_default();
    REFUSALS.warn(format_args!(
        "refused a webhook {method} {path} from {peer}{forwarded} with a missing or invalid X-Twilio-Signature"
    ));
    false
}

fn post_params(req: &Request) -> Result<Params, HttpError> {
    if req.body.is_empty() {
        return Ok(Vec::new());
    }
    if !req.media_type().eq_ignore_ascii_case(FORM_TYPE) {
        return Err(HttpError::UnsupportedMediaType(FORM_TYPE));
    }
    form::parse(&req.body).map_err(|e| HttpError::BadRequest(format!("body: {e}")))
}

fn parse_number(param: &str, value: &str) -> Result<PhoneNumber, HttpError> {
    PhoneNumber::parse(value).map_err(|m| HttpError::BadRequest(format!("query parameter {param}: {m}")))
}
