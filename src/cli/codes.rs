//! `intercom code add|list|rm`: guest codes through the running server's control API,
//! like `open`, so the server stays the only writer of `codes.json`. `args.rs` parses the
//! arguments and `mod.rs` hands over the API call; this module turns them into requests
//! and prints the answers.

use std::error::Error;
use std::time::Duration;

use serde_json::Value;

use crate::cli::out::say;
use crate::config;
use crate::model::api::{CodeBody, CodesBody, NewCodeRequest};

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
            let minutes = valid.map(|v| config::whole_minutes(&v)).transpose()?;
            let uses = uses
                .map(|u| u.parse::<u64>().map_err(|_| format!("--uses {u:?} is not a whole number")))
                .transpose()?;
            let body = serde_json::to_string(&NewCodeRequest { label, minutes, uses })?;
            let code: CodeBody = serde_json::from_value(api("POST", "/api/codes", &body)?)?;
            // The code alone on the first line, for scripts; the details after it.
            say!("{}", code.code);
            say!("  {}", describe(&code));
            Ok(())
        }
        CodeArgs::List => {
            let answer: CodesBody = serde_json::from_value(api("GET", "/api/codes", "")?)?;
            if answer.codes.is_empty() {
                say!("no active guest codes");
            }
            for c in &answer.codes {
                say!("{}  {}", c.code, describe(c));
            }
            Ok(())
        }
        CodeArgs::Rm(id) => {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("{id:?} is not a code id (see `intercom code list`)").into());
            }
            api("DELETE", &format!("/api/codes/{id}"), "")?;
            say!("deleted guest code {id}");
            Ok(())
        }
    }
}

/// `"plumber", 1 use left, until 2026-11-28 10:30 CET (23h 59m left), id 1a2b3c4d`.
fn describe(c: &CodeBody) -> String {
    let left = Duration::from_secs(c.remaining_seconds / 60 * 60);
    format!(
        "{:?}, {} use{} left, until {} ({} left), id {}",
        c.label,
        c.uses_left,
        if c.uses_left == 1 { "" } else { "s" },
        crate::util::time::local(c.valid_until),
        crate::util::time::human(left),
        c.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    #[test]
    fn add_sends_only_what_was_given_and_checks_it_first() {
        let sent = RefCell::new(Vec::new());
        let api = |m: &str, p: &str, b: &str| -> Result<Value, Box<dyn Error>> {
            sent.borrow_mut().push(format!("{m} {p} {b}"));
            Ok(
                json!({"id": "ab12", "code": "123456", "label": "x", "valid_until": "2026-11-28T09:30:00Z", "remaining_seconds": 60, "uses_left": 1}),
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
