//! `intercom code add|list|rm`: guest codes through the running server's control API,
//! like `open`, so the server stays the only writer of `codes.json`. `cli.rs` parses the
//! arguments and hands over the API call; this module turns them into requests and
//! prints the answers.

use std::error::Error;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config;

/// `code …` as typed; checked when run, like `open`'s duration.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeArgs {
    Add { label: Option<String>, valid: Option<String>, uses: Option<String> },
    List,
    Rm(String),
}

/// One call to the control API: method, path, JSON body → the answer's JSON (null for 204).
pub type ApiCall<'a> = &'a dyn Fn(&str, &str, &str) -> Result<Value, Box<dyn Error>>;

pub fn run(args: CodeArgs, api: ApiCall) -> Result<(), Box<dyn Error>> {
    match args {
        CodeArgs::Add { label, valid, uses } => {
            let mut body = serde_json::Map::new();
            if let Some(l) = label {
                body.insert("label".into(), json!(l));
            }
            if let Some(v) = valid {
                body.insert("minutes".into(), json!(config::whole_minutes(&v)?));
            }
            if let Some(u) = uses {
                let n: u64 = u.parse().map_err(|_| format!("--uses {u:?} is not a whole number"))?;
                body.insert("uses".into(), json!(n));
            }
            let code = api("POST", "/api/codes", &Value::Object(body).to_string())?;
            // The code alone on the first line, for scripts; the details after it.
            println!("{}", field(&code, "code")?);
            println!("  {}", describe(&code)?);
            Ok(())
        }
        CodeArgs::List => {
            let answer = api("GET", "/api/codes", "")?;
            let codes = answer["codes"].as_array().ok_or("the server answered without \"codes\"")?;
            if codes.is_empty() {
                println!("no active guest codes");
            }
            for c in codes {
                println!("{}  {}", field(c, "code")?, describe(c)?);
            }
            Ok(())
        }
        CodeArgs::Rm(id) => {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("{id:?} is not a code id (see `intercom code list`)").into());
            }
            api("DELETE", &format!("/api/codes/{id}"), "")?;
            println!("deleted guest code {id}");
            Ok(())
        }
    }
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, Box<dyn Error>> {
    v[name].as_str().ok_or_else(|| format!("the server answered without \"{name}\"").into())
}

/// `"plumber", 1 use left, until 2026-11-28 10:30:00 CET (23h 59m left), id 1a2b3c4d`.
fn describe(c: &Value) -> Result<String, Box<dyn Error>> {
    let uses = c["uses_left"].as_u64().unwrap_or(0);
    let left = Duration::from_secs(c["remaining_seconds"].as_u64().unwrap_or(0) / 60 * 60);
    Ok(format!(
        "{:?}, {uses} use{} left, until {} ({} left), id {}",
        field(c, "label")?,
        if uses == 1 { "" } else { "s" },
        crate::local_time::local_rfc3339(field(c, "valid_until")?),
        humantime::format_duration(left),
        field(c, "id")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn add_sends_only_what_was_given_and_checks_it_first() {
        let sent = RefCell::new(Vec::new());
        let api = |m: &str, p: &str, b: &str| -> Result<Value, Box<dyn Error>> {
            sent.borrow_mut().push(format!("{m} {p} {b}"));
            Ok(
                json!({"id": "ab12", "code": "123456", "label": "x", "valid_until": "t", "remaining_seconds": 60, "uses_left": 1}),
            )
        };
        let add = |l: Option<&str>, v: Option<&str>, u: Option<&str>| CodeArgs::Add {
            label: l.map(String::from),
            valid: v.map(String::from),
            uses: u.map(String::from),
        };
        run(add(Some("plumber"), Some("1d"), Some("2")), &api).unwrap();
        run(add(None, None, None), &api).unwrap();
        assert!(run(add(None, Some("90s"), None), &api).is_err());
        assert!(run(add(None, None, Some("two")), &api).is_err());
        assert!(run(CodeArgs::Rm("../close".into()), &api).is_err());
        run(CodeArgs::Rm("ab12".into()), &api).unwrap();
        assert_eq!(
            *sent.borrow(),
            [
                r#"POST /api/codes {"label":"plumber","minutes":1440,"uses":2}"#,
                "POST /api/codes {}",
                "DELETE /api/codes/ab12 "
            ]
        );
    }
}
