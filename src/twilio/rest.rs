//! Twilio's REST API (version 2010-04-01), the one client that `twilio-setup`, `doctor`
//! and SMS notifications share: the same credentials, the same error classes.
//!
//! Credentials: HTTP Basic with an API key (`twilio.api_key_sid` + `api_key_secret`) when
//! one is set, as Twilio recommends, else `account_sid:auth_token`. They go only into the
//! `Authorization` header, never into a URL, an error or a log line. A redirect is not
//! followed (it would carry them elsewhere); it is answered as a failure.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::{Secret, TwilioConfig};
use crate::model::phone::PhoneNumber;
use crate::system::outbound::{basic_auth, form, Agent, Answer, Failure};
use crate::util::loggable;

/// Twilio's explanation of an error (its JSON `message`), kept for the one line we print.
const ERROR_DETAIL_CHARS: usize = 200;
/// How many of the account's numbers `account_numbers` asks for: a home account has a
/// handful; the list only helps a user spot a typo in `twilio.number`.
pub const LISTED_NUMBERS: usize = 50;
/// Twilio SIDs are two letters and 32 hex digits; anything else from an answer would not
/// be safe to put into a request path.
const SID_LEN: usize = 34;
/// Twilio's error code for an update of a call that is not in progress.
const CALL_NOT_IN_PROGRESS: u64 = 21220;

/// A call to Twilio that did not give a 2xx answer. Its `Display` is one line, without
/// any secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestError {
    /// 401: the credentials were refused.
    Unauthorized,
    /// Any other non-2xx answer (a 404 among them, with Twilio's message). `retry_after` is the raw header, if any.
    Status { status: u16, detail: String, retry_after: Option<String> },
    /// No HTTP answer: connection refused, DNS, TLS, timeout. `permanent` when trying
    /// again cannot help (a bad URL).
    Network { why: String, permanent: bool },
    /// A 2xx answer that is not what the API documents.
    BadAnswer(String),
    /// 400 with Twilio's code 21220: the call to update is no longer in progress.
    CallEnded,
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            RestError::Unauthorized => f.write_str("Twilio refused the credentials (HTTP 401)"),
            RestError::Status { status, detail, .. } if detail.is_empty() => write!(f, "HTTP {status}"),
            RestError::Status { status, detail, .. } => write!(f, "HTTP {status}: {detail}"),
            RestError::Network { why, .. } => write!(f, "no answer: {why}"),
            RestError::BadAnswer(why) => write!(f, "an unexpected answer: {why}"),
            RestError::CallEnded => f.write_str("the call is no longer in progress"),
        }
    }
}

/// One phone number of the account, with the fields that route its calls.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct IncomingNumber {
    pub sid: String,
    pub phone_number: String,
    pub voice_url: Option<String>,
    pub voice_method: Option<String>,
    pub voice_fallback_url: Option<String>,
    pub voice_fallback_method: Option<String>,
    pub voice_application_sid: Option<String>,
    pub trunk_sid: Option<String>,
}

impl IncomingNumber {
    /// What overrides `voice_url`, if anything: a TwiML App or a SIP trunk.
    pub fn routed_elsewhere(&self) -> Option<String> {
        let set = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(loggable);
        let number = &self.phone_number;
        if let Some(app) = set(&self.voice_application_sid) {
            return Some(format!(
                "{number} is routed to the TwiML App {app}, which overrides its voice URL: in the Twilio console, under the number's Voice Configuration, choose \"Webhook\" instead of \"TwiML App\""
            ));
        }
        set(&self.trunk_sid).map(|trunk| {
            format!(
                "{number} belongs to the SIP trunk {trunk}, which takes its calls: in the Twilio console, remove the number from the trunk (Elastic SIP Trunking > Numbers)"
            )
        })
    }
}

#[derive(Deserialize)]
struct NumberList {
    incoming_phone_numbers: Vec<IncomingNumber>,
}

pub struct Rest {
    agent: Agent,
    /// `{api_base}/2010-04-01/Accounts/{AccountSid}`
    account_url: String,
    /// `Basic …` of the credentials in use.
    authorization: Secret,
    /// Which credentials are in use, and the keys that hold them, for messages.
    keys: &'static str,
}

impl Rest {
    /// A client for the configured account, each request bounded by `timeout`. Fails
    /// naming the key to set when the account or its credentials are missing.
    pub fn new(t: &TwilioConfig, timeout: Duration) -> Result<Rest, String> {
        let sid = t
            .account_sid
            .as_ref()
            .ok_or("set twilio.account_sid (AC…, on the Twilio console's start page)")?;
        let (user, password, keys) = match (&t.api_key_sid, &t.api_key_secret, &t.auth_token) {
            (Some(key), Some(secret), _) => {
                (key.clone(), secret.clone(), "the API key (twilio.api_key_sid and twilio.api_key_secret)")
            }
            (_, _, Some(token)) => (sid.clone(), token.clone(), "twilio.account_sid and twilio.auth_token"),
            _ => return Err("set twilio.api_key_sid and twilio.api_key_secret (or twilio.auth_token)".into()),
        };
        let account_url = format!("{}/2010-04-01/Accounts/{sid}", t.api_base);
        let authorization = Secret::new(basic_auth(&format!("{user}:{}", password.expose())));
        Ok(Rest { agent: Agent::https(timeout), account_url, authorization, keys })
    }

    /// The one line for a failure, with what to do about it.
    pub fn explain(&self, e: &RestError) -> String {
        match e {
            RestError::Unauthorized => {
                format!("Twilio refused the credentials (HTTP 401): check {}", self.keys)
            }
            RestError::Status { status: 500..=599, .. } => {
                format!("Twilio's API failed ({e}); this is on Twilio's side, try again in a few minutes")
            }
            RestError::Network { .. } => format!(
                "cannot reach Twilio's API at {} ({e}); check this machine's internet connection and DNS",
                crate::config::url::url_origin(&self.account_url)
            ),
            _ => format!("Twilio's API answered {e}"),
        }
    }

    /// The number, looked up by its E.164 form; `None` when the account has no such number.
    pub fn find_number(&self, number: &PhoneNumber) -> Result<Option<IncomingNumber>, RestError> {
        let list = self.list(&[("PhoneNumber", number.as_str())])?;
        Ok(list.into_iter().find(|n| n.phone_number == number.as_str()))
    }

    /// The account's numbers (at most [`LISTED_NUMBERS`]), for a message about a typo.
    pub fn account_numbers(&self) -> Result<Vec<String>, RestError> {
        let size = LISTED_NUMBERS.to_string();
        Ok(self.list(&[("PageSize", &size)])?.into_iter().map(|n| loggable(&n.phone_number)).collect())
    }

    fn list(&self, query: &[(&str, &str)]) -> Result<Vec<IncomingNumber>, RestError> {
        let url = format!("{}/IncomingPhoneNumbers.json?{}", self.account_url, form(query));
        let body = answer(self.agent.send("GET", &url, &self.headers(), None))?;
        Ok(parse::<NumberList>(&body, "the number list does not parse")?.incoming_phone_numbers)
    }

    /// Sets the given fields of a number in one form POST; returns the number as it is now.
    pub fn update_number(&self, sid: &str, fields: &[(&str, &str)]) -> Result<IncomingNumber, RestError> {
        check_sid(sid, "PN")?;
        parse(&self.post(&format!("IncomingPhoneNumbers/{sid}.json"), fields)?, "the updated number")
    }

    /// Replaces what a call in progress does with `twiml` ("update a call in progress").
    pub fn update_call(&self, sid: &str, twiml: &str) -> Result<(), RestError> {
        check_sid(sid, "CA")?;
        let body = self.post(&format!("Calls/{sid}.json"), &[("Twiml", twiml)])?;
        parse::<serde::de::IgnoredAny>(&body, "not JSON").map(drop)
    }

    /// Sends one SMS.
    pub fn send_sms(&self, from: &PhoneNumber, to: &PhoneNumber, text: &str) -> Result<(), RestError> {
        self.post("Messages.json", &[("To", to.as_str()), ("From", from.as_str()), ("Body", text)]).map(drop)
    }

    /// A form POST; the answer's body.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Result<String, RestError> {
        let (url, body) = (format!("{}/{path}", self.account_url), form(fields));
        let form_body = Some(("application/x-www-form-urlencoded", body.as_bytes()));
        answer(self.agent.send("POST", &url, &self.headers(), form_body))
    }

    fn headers(&self) -> [(&str, &str); 2] {
        [("Authorization", self.authorization.expose()), ("Accept", "application/json")]
    }
}

/// A SID goes into a request path only if it is one (`PN…`, `CA…`).
fn check_sid(sid: &str, prefix: &str) -> Result<(), RestError> {
    if sid.len() == SID_LEN && sid.starts_with(prefix) && sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(());
    }
    Err(RestError::BadAnswer(format!("a {prefix} SID that is not one: {:?}", loggable(sid))))
}

/// A 2xx answer's body as the API documents it; `what` says which answer in the error.
fn parse<T: serde::de::DeserializeOwned>(body: &str, what: &str) -> Result<T, RestError> {
    serde_json::from_slice(body.as_bytes()).map_err(|e| RestError::BadAnswer(format!("{what}: {e}")))
}

/// A 2xx answer's body, or the failure it means.
fn answer(result: Result<Answer, Failure>) -> Result<String, RestError> {
    let answer = result.map_err(network_error)?;
    let body = answer.text();
    if (200..300).contains(&answer.status) {
        return Ok(body);
    }
    let (code, detail) = error_detail(&body);
    let retry_after = answer.header("retry-after").map(loggable);
    Err(match answer.status {
        401 => RestError::Unauthorized,
        400 if code == Some(CALL_NOT_IN_PROGRESS) => RestError::CallEnded,
        status => RestError::Status { status, detail, retry_after },
    })
}

/// Twilio explains an error in JSON `code` and `message`; anything else is kept short
/// and clean.
fn error_detail(body: &str) -> (Option<u64>, String) {
    let v: Value = serde_json::from_slice(body.as_bytes()).unwrap_or_default();
    let text = v["message"].as_str().unwrap_or(body);
    (v["code"].as_u64(), loggable(&text.chars().take(ERROR_DETAIL_CHARS).collect::<String>()))
}

/// Transport errors are worth another try, except those that can only repeat. The
/// message never holds a credential (they are only in a header).
pub fn network_error(e: Failure) -> RestError {
    RestError::Network { permanent: matches!(e, Failure::Invalid(_)), why: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn twilio_error_bodies_become_one_clean_line() {
        let body = r#"{"code": 20404, "message": "The requested resource\nwas not found", "status": 404}"#;
        assert_eq!(error_detail(body), (Some(20404), "The requested resourcewas not found".into()));
        assert_eq!(error_detail("<html>oops</html>").1, "<html>oops</html>");
        assert!(error_detail(&"x".repeat(1000)).1.chars().count() <= 70);
    }

    #[test]
    fn routing_overrides_are_named_with_the_fix() {
        let mut n = IncomingNumber { phone_number: "+15550001111".into(), ..Default::default() };
        assert_eq!(n.routed_elsewhere(), None);
        n.voice_application_sid = Some(String::new());
        assert_eq!(n.routed_elsewhere(), None, "empty means unset");
        n.trunk_sid = Some("TK123".into());
        assert!(n.routed_elsewhere().unwrap().contains("SIP trunk TK123"));
        n.voice_application_sid = Some("AP123".into());
        assert!(n.routed_elsewhere().unwrap().contains("TwiML App AP123"));
    }

    #[test]
    fn api_key_is_preferred_and_never_shown() {
        let c = crate::config::parse(
            r#"{"webhook": {"public_url": "https://d.example"}, "twilio": {"account_sid": "AC1",
                "auth_token": "tok-secret", "api_key_sid": "SK1", "api_key_secret": "key-secret"}}"#,
            |_| None,
        )
        .unwrap();
        let rest = Rest::new(&c.twilio, Duration::from_secs(1)).unwrap();
        let basic = |pair: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
        assert_eq!(rest.authorization.expose(), basic("SK1:key-secret"));
        assert!(rest.keys.contains("api_key_sid"));
        let all = [
            RestError::Unauthorized,
            RestError::Status { status: 404, detail: "x".into(), retry_after: None },
        ];
        for e in all {
            let line = rest.explain(&e);
            assert!(!line.contains("key-secret") && !line.contains("tok-secret"), "{line}");
        }
        let mut t = c.twilio.clone();
        (t.api_key_sid, t.api_key_secret) = (None, None);
        assert_eq!(
            Rest::new(&t, Duration::from_secs(1)).unwrap().authorization.expose(),
            basic("AC1:tok-secret")
        );
        t.auth_token = None;
        assert!(Rest::new(&t, Duration::from_secs(1)).err().unwrap().contains("twilio.api_key_sid"));
    }
}
