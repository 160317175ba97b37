//! The control API's bodies, one type for each, shared by the server (`web/control.rs`),
//! the CLI, `doctor` and the tests' expectations, so both ends read and write the same
//! shape. Requests refuse unknown fields (a typo must not silently mean "the default");
//! answers accept them, so an older CLI still reads a newer server.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::record::Record;

/// `GET /api/status`, and the answer to `POST /api/open` and `POST /api/close`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    pub open: bool,
    /// Whole seconds, as every time in the API (RFC 3339 UTC).
    pub open_until: Option<Timestamp>,
    pub remaining_seconds: u64,
    /// Set while the state disk has a problem: the page shows it as a banner.
    pub storage_problem: Option<String>,
    /// This process's instance id (`/api/status` only), which `doctor` matches with what
    /// `/healthz` shows through the tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Whether this process checks Twilio's signatures (`/api/status` only): what
    /// `doctor` reports, rather than what the files it reads say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures_checked: Option<bool>,
    /// Set while stored guest codes do not work, saying why (a lock after wrong codes, a
    /// clock that stepped back, a clock not yet synchronized after a restart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codes_paused: Option<String>,
    /// Set while the clock is in doubt after a step, saying why in the household's words:
    /// schedules, quiet hours and guest codes wait until it is confirmed (docs/clock.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_doubt: Option<String>,
    /// The window is for the next visitor only (a one-shot window).
    #[serde(default)]
    pub once: bool,
    /// The schedule that lets visitors in now, if any (the window may be closed).
    pub schedule: Option<ScheduleNow>,
    /// The forwarded call that rings the residents' phones now, if any.
    pub ringing: Option<RingingBody>,
    /// The longest window `POST /api/open` takes (`max_window`), so a client can refuse a
    /// longer one in its own words before it asks.
    #[serde(default)]
    pub max_window_minutes: u64,
}

/// A call ringing now, in the status: `POST /api/let-in` with its `call` lets it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingingBody {
    /// Its `CallSid`.
    pub call: String,
    /// `intercoms[].name`, when the config names its entrances.
    pub entrance: Option<String>,
    pub since: Timestamp,
}

/// `POST /api/let-in`: the ringing call to let in, as the status named it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetInRequest {
    pub call: String,
}

/// `GET /api/proof?nonce=…`: the listener's proof that it knows the control token,
/// which the CLI checks before it sends the token (`twilio/signature.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBody {
    pub proof: String,
}

/// A schedule open now, in the status; `id` for `POST /api/schedules/{id}/pause`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleNow {
    pub id: String,
    pub label: String,
    pub open_until: Timestamp,
}

/// `POST /api/open`; an empty body or no `minutes` means `default_window`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    pub minutes: Option<u64>,
    /// For the next visitor only: the first unlock closes the window.
    pub once: Option<bool>,
}

/// `POST /api/codes`; every field optional (the rules give the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCodeRequest {
    pub label: Option<String>,
    pub minutes: Option<u64>,
    pub uses: Option<u64>,
}

/// One guest code as the API shows it, with the digits so the page can share it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBody {
    pub id: String,
    pub code: String,
    pub label: String,
    pub valid_until: Timestamp,
    pub remaining_seconds: u64,
    pub uses_left: u32,
}

/// `GET /api/codes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodesBody {
    pub codes: Vec<CodeBody>,
    /// Why the codes listed do not work now, if they do not (as `StatusBody::codes_paused`).
    pub paused: Option<String>,
}

/// `POST /api/schedules`; every field is required (`rules/schedule.rs` says which is
/// missing), they are optional here so the error can name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewScheduleRequest {
    pub label: Option<String>,
    /// `mon-fri`, `sat,sun`, `daily`, …
    pub days: Option<String>,
    /// `HH:MM`, local time.
    pub from: Option<String>,
    /// `HH:MM` (or `24:00`), local time; not after `from` means the next day.
    pub to: Option<String>,
    /// Only for calls from this entrance (`intercoms[].name`); all when left out.
    pub entrance: Option<String>,
}

/// One schedule as the API shows it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleBody {
    pub id: String,
    pub label: String,
    pub days: String,
    pub from: String,
    pub to: String,
    pub paused: bool,
    /// Open now (and the clock is trusted).
    pub open: bool,
    /// While open.
    pub open_until: Option<Timestamp>,
    /// Only for calls from this entrance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrance: Option<String>,
}

/// `GET /api/schedules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulesBody {
    pub schedules: Vec<ScheduleBody>,
    /// The zone the schedules follow (an IANA name, a POSIX string, or UTC).
    pub time_zone: String,
    /// The server's local wall-clock time, `2026-12-01T14:05:00`.
    pub local_time: Option<String>,
    /// Whether schedules may open the door (see docs/household.md).
    pub clock_trusted: bool,
}

/// `GET /api/events`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsBody {
    pub events: Vec<Record>,
}

/// `POST /api/pairings`: a one-time pairing link for a device to be called `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairingRequest {
    pub name: String,
}

/// The answer to `POST /api/pairings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingBody {
    /// The name as it will be kept (trimmed).
    pub name: String,
    /// `/pair#c=CODE`: the client puts the address it knows in front.
    pub path: String,
    pub valid_seconds: u64,
    /// The link as a QR code (SVG), for the page; absent when built without `qr`.
    pub qr_svg: Option<String>,
}

/// `POST /api/pair`: the page spends a pairing code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairRequest {
    pub code: String,
}

/// One paired device as the API shows it (never its secret or hash); also the answer to
/// `POST /api/pair`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBody {
    pub id: String,
    pub name: String,
    pub paired: Timestamp,
    pub last_used: Option<Timestamp>,
    /// The device that asked (its cookie), so the page can say "this phone".
    #[serde(default)]
    pub this_device: bool,
    /// Only in the answer to `POST /api/pair`: the key the page keeps in its origin's
    /// storage and sends as `X-Intercom-Key` beside the cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_key: Option<String>,
}

/// `GET /api/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesBody {
    pub devices: Vec<DeviceBody>,
}

/// Every refusal, whatever the route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

/// Reads a request body: empty (or only whitespace) means the default; otherwise one JSON
/// object of the type's fields. The error names the field at fault (`minutes: invalid
/// type: …`, `unknown field `colour``) so the caller can add how to fix it.
pub fn read_request<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    if !value.is_object() {
        return Err("the body must be a JSON object".into());
    }
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = crate::util::loggable(&e.into_inner().to_string());
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_strict_and_name_the_field() {
        assert_eq!(read_request::<OpenRequest>(b" \n").unwrap(), OpenRequest::default());
        assert_eq!(read_request::<OpenRequest>(br#"{"minutes": 5}"#).unwrap().minutes, Some(5));
        assert_eq!(read_request::<OpenRequest>(br#"{"once": true}"#).unwrap().once, Some(true));
        for (body, says) in [
            (&br#"{"minutes": "ten"}"#[..], "minutes: invalid type"),
            (br#"{"minutes": -1}"#, "minutes"),
            (br#"{"minutes": 2.5}"#, "minutes"),
            (br#"{"minutes": 99999999999999999999999}"#, "minutes"),
            (br#"{"colour": 1}"#, "unknown field `colour`"),
            (br#"{"once": "yes"}"#, "once: invalid type"),
            (b"[]", "must be a JSON object"),
            (b"{garbage", "not JSON"),
        ] {
            let e = read_request::<OpenRequest>(body).unwrap_err();
            assert!(e.contains(says), "{}: {e}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn answers_round_trip_and_tolerate_new_fields() {
        let s: StatusBody = serde_json::from_str(
            r#"{"open": false, "open_until": null, "remaining_seconds": 0, "later": 1}"#,
        )
        .unwrap();
        assert_eq!(s.storage_problem, None);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            r#"{"open":false,"open_until":null,"remaining_seconds":0,"storage_problem":null,"once":false,"schedule":null,"ringing":null,"max_window_minutes":0}"#
        );
    }
}
