//! `intercom schedule add|list|rm|pause|resume`: schedules through the running server's
//! control API, like `open` and `code`, so the server stays the only writer of
//! `schedules.json`. `schedule add`'s arguments are read here, for its entry in `args.rs`,
//! and checked by the rules the server applies; this module makes the requests and
//! prints the answers.

use std::error::Error;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use lexopt::prelude::*;

use crate::cli::client::{found, Client};
use crate::cli::out::say;
use crate::cli::reader::{Args, UsageError};
use crate::config::Config;
use crate::model::api::{NewScheduleRequest, ScheduleBody, SchedulesBody};
use crate::rules::schedule::from_request;
use crate::util::time::{local, local_in};

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
const EXAMPLE: &str = "like `intercom schedule add mon-fri 08:00-18:00`";

/// `schedule add DAYS FROM-TO` and its flags; the entrance is checked when run, against
/// the config's intercoms.
pub fn parse_add(a: &mut Args) -> Result<ScheduleArgs, UsageError> {
    let mut r = NewScheduleRequest { label: Some(DEFAULT_LABEL.into()), ..NewScheduleRequest::default() };
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("label") => r.label = Some(a.text()?),
            Long("entrance") => r.entrance = Some(a.text()?),
            Value(v) if r.days.is_none() => r.days = Some(v.string()?),
            Value(v) if r.from.is_none() => {
                let v = v.string()?;
                // En dash too: "08:00–18:00" is how people write it.
                let (from, to) = v
                    .split_once(['-', '–'])
                    .ok_or_else(|| UsageError(format!("{v:?} is not a time range: write it {EXAMPLE}")))?;
                (r.from, r.to) = (Some(from.into()), Some(to.into()));
            }
            arg => return Err(a.unexpected(arg)),
        }
    }
    if r.from.is_none() {
        return Err(a.missing("DAYS and FROM-TO, e.g. mon-fri 08:00-18:00"));
    }
    let days_and_times = NewScheduleRequest { entrance: None, ..r.clone() };
    from_request(&days_and_times, &[]).map_err(|e| UsageError(format!("{e}, {EXAMPLE}")))?;
    Ok(ScheduleArgs::Add(r))
}

pub fn run(args: ScheduleArgs, api: &Client, config: &Config) -> Result<(), Box<dyn Error>> {
    let missing =
        |id: &str| format!("there is no schedule {id}: `intercom schedule list` shows them and their IDs");
    let set = |id: &str, what: &str| -> Result<ScheduleBody, Box<dyn Error>> {
        Ok(found(api.post(&format!("/api/schedules/{id}/{what}"), &()))?.ok_or_else(|| missing(id))?)
    };
    match args {
        ScheduleArgs::Add(request) => {
            let entrance = |e: String| format!("--entrance: {}", e.trim_start_matches("entrance "));
            from_request(&request, &config.intercoms).map_err(entrance)?;
            say!("{}", describe(&api.post("/api/schedules", &request)?));
        }
        ScheduleArgs::List => {
            let answer: SchedulesBody = api.get("/api/schedules")?;
            // The server's wall clock in its zone (an IANA name or a POSIX string), shown
            // as every time the CLI shows.
            let zone = &answer.time_zone;
            let tz =
                TimeZone::get(zone).or_else(|_| TimeZone::posix(zone)).unwrap_or_else(|_| TimeZone::system());
            let zoned = |t: &str| t.parse::<DateTime>().ok()?.to_zoned(tz.clone()).ok();
            let now = answer.local_time.as_deref().and_then(zoned);
            let now = now.map_or("?".into(), |t| local_in(t.timestamp(), &tz));
            say!("schedules follow the time zone {zone}: it is {now} there");
            if !answer.clock_trusted {
                say!("the clock is not confirmed right (after a restart or a jump): no schedule opens the door until it is; `intercom status` says why");
            }
            if answer.schedules.is_empty() {
                say!("no schedules");
            }
            for s in &answer.schedules {
                say!("{}", describe(s));
            }
        }
        ScheduleArgs::Rm(id) => {
            found(api.delete(&format!("/api/schedules/{id}")))?.ok_or_else(|| missing(&id))?;
            say!("deleted schedule {id}");
        }
        ScheduleArgs::Pause(id) => say!("{}", describe(&set(&id, "pause")?)),
        ScheduleArgs::Resume(id) => say!("{}", describe(&set(&id, "resume")?)),
    }
    Ok(())
}

/// `1a2b3c4d  mon-fri 08:00-18:00  "deliveries"  open until …` (or `paused`).
fn describe(s: &ScheduleBody) -> String {
    let only = s.entrance.as_ref().map_or(String::new(), |e| format!("{e} only  "));
    let state = match (&s.open_until, s.paused) {
        (_, true) => "paused".to_string(),
        (Some(until), false) => format!("open until {}", local(*until)),
        (None, false) => String::new(),
    };
    format!("{}  {} {}-{}  {:?}  {only}{state}", s.id, s.days, s.from, s.to, s.label).trim_end().to_string()
}
