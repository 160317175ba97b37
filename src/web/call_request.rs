//! A webhook request as a call: its parameters (the body for POST, the query for GET),
//! the number overrides of the query, and Twilio's signature checked first. Nothing here
//! decides anything; `webhook.rs` does.

use crate::config::entrances::Entrance;
use crate::config::Config;
use crate::http::form::{self, Params};
use crate::http::{HttpError, Request};
use crate::model::phone::PhoneNumber;
use crate::twilio::signature;
use crate::util::loggable;
use crate::util::ratelog::RateLog;

const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// A call's parameters, authenticated, and the numbers that apply to it.
pub struct Call {
    pub from: Option<String>,
    pub call_sid: Option<String>,
    pub digits: Option<String>,
    /// How the dial to one person ended (Twilio's `DialCallStatus`, on `/voice/next`).
    pub dial_status: Option<String>,
    /// The config's intercoms, or the one a request's `ExpectedFrom` names.
    pub intercoms: Vec<Entrance>,
    pub forward_to: Vec<PhoneNumber>,
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

/// Parses and authenticates a call's request. Errors mean no TwiML.
pub fn parse(config: &Config, req: &Request, refusals: &RateLog) -> Result<Call, Refused> {
    let query =
        form::parse(req.query.as_bytes()).map_err(|e| HttpError::BadRequest(format!("query: {e}")))?;
    let body = if req.method == "POST" { post_params(req)? } else { Vec::new() };
    check_signature(config, req, &body, refusals)?;

    // Twilio puts the call's parameters in the body for POST and the query for GET.
    let call_params = if req.method == "POST" { &body } else { &query };
    let owned = |v: Option<&str>| v.map(str::to_string);

    // Query overrides, for Twilio setups that already pass them in the webhook URL.
    let intercoms = match one(&query, "ExpectedFrom")? {
        Some(n) => vec![Entrance {
            name: None,
            number: parse_number("ExpectedFrom", n)?,
            unlock_digits: config.unlock_digits.clone(),
        }],
        None => config.intercoms.clone(),
    };
    let forward_to = match one(&query, "PhoneNumberToDial")? {
        Some(list) => {
            list.split(',').map(|n| parse_number("PhoneNumberToDial", n)).collect::<Result<_, _>>()?
        }
        None => config.forward_to.clone(),
    };
    Ok(Call {
        from: owned(one(call_params, "From")?),
        call_sid: owned(one(call_params, "CallSid")?),
        digits: owned(one(call_params, "Digits")?),
        dial_status: owned(one(call_params, "DialCallStatus")?),
        intercoms,
        forward_to,
    })
}

fn check_signature(
    config: &Config,
    req: &Request,
    post_params: &Params,
    refusals: &RateLog,
) -> Result<(), Refused> {
    let (Some(token), Some(public_url)) = (&config.twilio.auth_token, &config.webhook.public_url) else {
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
    refusals.warn(format_args!(
        "refused a webhook {} {} from {}{} with a missing or invalid X-Twilio-Signature",
        req.method,
        loggable(&req.path),
        req.peer,
        forwarded.unwrap_or_default()
    ));
    Err(Refused::BadSignature)
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
