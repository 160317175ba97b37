//! `intercom code add|list|rm`: guest codes through the running server's control API,
//! like `open`, so the server stays the only writer of `codes.json`. `code add`'s flags are
//! read here, for its entry in `args.rs`; this module makes the requests and prints the
//! answers.

use std::error::Error;
use std::time::Duration;

use lexopt::prelude::*;

use crate::cli::client::Client;
use crate::cli::out::say;
use crate::cli::reader::{Args, UsageError};
use crate::config;
use crate::model::api::{CodeBody, CodesBody, NewCodeRequest};

/// `code …`, checked.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeArgs {
    Add(NewCodeRequest),
    List,
    Rm(String),
}

/// `code add`'s flags.
pub fn parse_add(a: &mut Args) -> Result<CodeArgs, UsageError> {
    let mut r = NewCodeRequest::default();
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("label") => r.label = Some(a.text()?),
            Long("valid") => r.minutes = Some(a.value(config::whole_minutes)?),
            Long("uses") => {
                r.uses = Some(a.value(|u| u.parse().map_err(|_| format!("{u:?} is not a whole number")))?)
            }
            arg => return Err(a.unexpected(arg)),
        }
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
            api.delete(&format!("/api/codes/{id}"))?;
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
