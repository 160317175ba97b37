//! `intercom schedule add|list|rm|pause|resume`: schedules through the running server's
//! control API, like `open` and `code`, so the server stays the only writer of
//! `schedules.json`. `schedule add`'s arguments are read here, for its entry in `args.rs`;
//! this module makes the requests and prints the answers.

use std::error::Error;

use lexopt::prelude::*;

use crate::cli::client::Client;
use crate::cli::reader::{convert, Args, UsageError};
use crate::model::api::{NewScheduleRequest, ScheduleBody, SchedulesBody};

/// `schedule …`, checked.
#[derive(Debug, PartialEq, Eq)]
pub enum ScheduleArgs {
    Add(NewScheduleRequest),
    List,
    Rm(String),
    Pause(String),
    Resume(String),
}

/// What `add` is called when `--label` is not given.
const DEFAULT_LABEL: &str = "schedule";
/// `schedule add DAYS FROM-TO` and its flags.
pub fn parse_add(a: &mut Args) -> Result<ScheduleArgs, UsageError> {
    let mut r = NewScheduleRequest { label: Some(DEFAULT_LABEL.into()), ..NewScheduleRequest::default() };
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("label") => r.label = Some(a.text()?),
            Long("entrance") => r.entrance = Some(a.text()?),
            Value(v) if r.days.is_none() => r.days = Some(convert(v, |s| Ok(s.to_string()))?),
            Value(v) if r.from.is_none() => {
                // En dash too: "08:00–18:00" is how people write it.
                let (from, to) = convert(v, |s| {
                    let range = s.split_once(['-', '–']);
                    range
                        .ok_or_else(|| format!("{s:?} is not a time range: write it like 08:00-18:00"))
                        .map(|(f, t)| (f.to_string(), t.to_string()))
                })?;
                (r.from, r.to) = (Some(from), Some(to));
            }
            arg => return Err(a.unexpected(arg)),
        }
    }
    if r.from.is_none() {
        return Err(a.missing("DAYS and FROM-TO, e.g. mon-fri 08:00-18:00"));
    }
    Ok(ScheduleArgs::Add(r))
}

pub fn run(args: ScheduleArgs, api: &Client) -> Result<(), Box<dyn Error>> {
    let changed: ScheduleBody = match args {
        ScheduleArgs::Add(request) => api.post("/api/schedules", &request)?,
        ScheduleArgs::List => {
            let answer: SchedulesBody = api.get("/api/schedules")?;
            // The server's wall clock, to the minute as every time the CLI shows.
            let local_time = answer.local_time.as_deref().unwrap_or("?");
            let local_time = local_time
                .parse::<jiff::civil::DateTime>()
                .map_or(local_time.to_string(), |t| t.strftime("%Y-%m-%d %H:%M").to_string());
            println!("time zone {}, local time {local_time}", answer.time_zone);
            if !answer.clock_trusted {
                println!("the clock is not confirmed right since the last restart: no schedule opens the door until it is");
            }
            if answer.schedules.is_empty() {
                println!("no schedules");
            }
            for s in &answer.schedules {
                println!("{}", describe(s));
            }
            return Ok(());
        }
        ScheduleArgs::Rm(id) => {
            api.delete(&format!("/api/schedules/{id}"))?;
            println!("deleted schedule {id}");
            return Ok(());
        }
        ScheduleArgs::Pause(id) => api.post(&format!("/api/schedules/{id}/pause"), &())?,
        ScheduleArgs::Resume(id) => api.post(&format!("/api/schedules/{id}/resume"), &())?,
    };
    println!("{}", describe(&changed));
    Ok(())
}

/// `1a2b3c4d  mon-fri 08:00-18:00  "deliveries"  open until …` (or `paused`).
fn describe(s: &ScheduleBody) -> String {
    let only = s.entrance.as_ref().map_or(String::new(), |e| format!("{e} only  "));
    let state = match (&s.open_until, s.paused) {
        (_, true) => "paused".to_string(),
        (Some(until), false) => format!("open until {}", crate::util::time::local(*until)),
        (None, false) => String::new(),
    };
    format!("{}  {} {}-{}  {:?}  {only}{state}", s.id, s.days, s.from, s.to, s.label).trim_end().to_string()
}
