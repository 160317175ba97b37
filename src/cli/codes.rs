//! `intercom code add|list|rm`: guest codes through the running server's control API,
//! like `open`, so the server stays the only writer of `codes.json`. `code add`'s flags are
//! read here, for its entry in `args.rs`; this module makes the requests and prints the
//! answers.

use std::error::Error;
use std::time::Duration;

use lexopt::prelude::*;

use crate::cli::client::{found, Client};
use crate::cli::out::{left, say};
use crate::cli::reader::{Args, UsageError};
use crate::config::whole_minutes;
use crate::model::api::{CodeBody, CodesBody, NewCodeRequest};
use crate::rules::codes;
use crate::util::time::{human, local};

/// `code …`, checked.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeArgs {
    Add(NewCodeRequest),
    List,
    Rm(String),
}

/// `code add`'s flags, each checked by the rule the server applies
/// (`rules::codes::check_new`), and told in the flag's terms.
pub fn parse_add(a: &mut Args) -> Result<CodeArgs, UsageError> {
    let mut r = NewCodeRequest::default();
    while let Some(arg) = a.next_arg()? {
        let allow = match arg {
            Long("label") => {
                r.label = Some(a.text()?);
                format!("1 to {} printable characters, like plumber", codes::MAX_LABEL_CHARS)
            }
            Long("valid") => {
                r.minutes = Some(a.value(whole_minutes)?);
                format!("from 1m to {}, like 4h or 2d", human(Duration::from_secs(codes::MAX_MINUTES * 60)))
            }
            Long("uses") => {
                r.uses = Some(a.value(|u| u.parse().map_err(|_| format!("{u:?} is not a whole number")))?);
                format!("from 1 to {}", codes::MAX_USES)
            }
            arg => return Err(a.unexpected(arg)),
        };
        // The values read before this one passed already: a refusal is this one's.
        codes::check_new(&r).map_err(|_| UsageError(format!("--{}: {allow}", a.flag)))?;
    }
    Ok(CodeArgs::Add(r))
}

pub fn run(args: CodeArgs, api: &Client) -> Result<(), Box<dyn Error>> {
    match args {
        CodeArgs::Add(request) => {
            let code: CodeBody = api.post("/api/codes", &request)?;
            // The code alone on the first line, for scripts; the details after it.
            say!("{}", code.code);
            say!("  {}", describe(&code));
        }
        CodeArgs::List => {
            let answer: CodesBody = api.get("/api/codes")?;
            if answer.codes.is_empty() {
                say!("no active guest codes");
            }
            if let Some(why) = &answer.paused {
                say!("guest codes do not work now: {why}");
            }
            for c in &answer.codes {
                say!("{}  {}", c.code, describe(c));
            }
        }
        CodeArgs::Rm(id) => {
            found(api.delete(&format!("/api/codes/{id}")))?.ok_or(format!(
                "there is no guest code {id}: `intercom code list` shows the codes and their IDs"
            ))?;
            say!("deleted guest code {id}");
        }
    }
    Ok(())
}

/// `"plumber", 1 use left, until 2026-11-28 10:30 CET (23h 59m left), id 1a2b3c4d`.
fn describe(c: &CodeBody) -> String {
    let uses = if c.uses_left == 1 { "use" } else { "uses" };
    let (until, left) = (local(c.valid_until), left(c.remaining_seconds));
    format!("{:?}, {} {uses} left, until {until} ({left}), id {}", c.label, c.uses_left, c.id)
}
