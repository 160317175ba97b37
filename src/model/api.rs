//! The control API's bodies, one type for each, shared by the server (`web/control.rs`),
//! the CLI, `doctor` and the tests' expectations, so both ends read and write the same
//! shape. Requests refuse unknown fields (a typo must not silently mean "the default");
//! answers accept them, so an older CLI still reads a newer server.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::record::Record;

/// `GET /api/status`, and the answer to `POST /api/open` and `POST /api/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    pub open: bool,
    /// RFC 3339 UTC, whole seconds.
    pub open_until: Option<String>,
    pub remaining_seconds: u64,
    /// Set while the state disk has a problem: the page shows it as a banner.
    #[serde(default)]
    pub storage_problem: Option<String>,
    /// This process's instance id (`/api/status` only), which `doctor` matches with what
    /// `/healthz` shows through the tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// `POST /api/open`; an empty body or no `minutes` means `default_window`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u64>,
}

/// `POST /api/codes`; every field optional (the rules give the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCodeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<u64>,
}

/// One guest code as the API shows it, with the digits so the page can share it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeBody {
    pub id: String,
    pub code: String,
    pub label: String,
    /// RFC 3339 UTC, whole seconds.
    pub valid_until: String,
    pub remaining_seconds: u64,
    pub uses_left: u32,
}

/// `GET /api/codes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodesBody {
    pub codes: Vec<CodeBody>,
}

/// `GET /api/events`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsBody {
    pub events: Vec<Record>,
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
    serde_path_to_error::deserialize(value).map_err(|e| {
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
        for (body, says) in [
            (&br#"{"minutes": "ten"}"#[..], "minutes: invalid type"),
            (br#"{"minutes": -1}"#, "minutes"),
            (br#"{"minutes": 2.5}"#, "minutes"),
            (br#"{"minutes": 99999999999999999999999}"#, "minutes"),
            (br#"{"colour": 1}"#, "unknown field `colour`"),
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
        assert_eq!(text, r#"{"open":false,"open_until":null,"remaining_seconds":0,"storage_problem":null}"#);
    }
}
