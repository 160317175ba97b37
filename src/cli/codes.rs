//! `intercom code add|list|rm`: guest codes through the running server's control API,
//! like `open`, so the server stays the only writer of `codes.json`. `args.rs` parses the
//! arguments and `mod.rs` hands over the API call; this module turns them into requests
//! and prints the answers.

use std::error::Error;
use std::time::Duration;

use crate::cli::client::Client;
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

pub fn run(args: CodeArgs, api: &Client) -> Result<(), Box<dyn Error>> {
    match args {
        CodeArgs::Add { label, valid, uses } => {
            let minutes = valid.map(|v| config::whole_minutes(&v)).transpose()?;
            let uses = uses
                .map(|u| u.parse::<u64>().map_err(|_| format!("--uses {u:?} is not a whole number")))
                .transpose()?;
            let code: CodeBody = api.post("/api/codes", &NewCodeRequest { label, minutes, uses })?;
            // The code alone on the first line, for scripts; the details after it.
            say!("{}", code.code);
            say!("  {}", describe(&code));
            Ok(())
        }
        CodeArgs::List => {
            let answer: CodesBody = api.get("/api/codes")?;
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
            api.delete(&format!("/api/codes/{id}"))?;
            say!("deleted guest code {id}");
            Ok(())
        }
    }
}

/// `"plumber", 1 use left, until 2026-11-28 10:30:00 CET (23h 59m left), id 1a2b3c4d`.
fn describe(c: &CodeBody) -> String {
    let left = Duration::from_secs(c.remaining_seconds / 60 * 60);
    format!(
        "{:?}, {} use{} left, until {} ({} left), id {}",
        c.label,
        c.uses_left,
        if c.uses_left == 1 { "" } else { "s" },
        crate::util::time::local_rfc3339(&c.valid_until),
        humantime::format_duration(left),
        c.id
    )
}
