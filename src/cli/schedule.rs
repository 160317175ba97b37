//! `intercom schedule add|list|rm|pause|resume`: schedules through the running server's
//! control API, like `open` and `code`, so the server stays the only writer of
//! `schedules.json`. `mod.rs` parses the arguments; this module checks them in the
//! user's terms, makes the requests and prints the answers.

use std::error::Error;

use crate::cli::client::Client;
use crate::model::api::{NewScheduleRequest, ScheduleBody, SchedulesBody};

/// `schedule …` as typed.
#[derive(Debug, PartialEq, Eq)]
pub enum ScheduleArgs {
    /// `add DAYS FROM-TO [--label L]`
    Add {
        days: String,
        range: String,
        label: Option<String>,
        /// Only for this entrance (`intercoms[].name`).
        entrance: Option<String>,
    },
    List,
    Rm(String),
    Pause(String),
    Resume(String),
}

/// What `add` is called when `--label` is not given.
const DEFAULT_LABEL: &str = "schedule";

pub fn run(args: ScheduleArgs, api: &Client) -> Result<(), Box<dyn Error>> {
    match args {
        ScheduleArgs::Add { days, range, label, entrance } => {
            // En dash too: "08:00–18:00" is how people write it.
            let (from, to) = range
                .split_once(['-', '–'])
                .ok_or_else(|| format!("{range:?} is not a time range: write it like 08:00-18:00"))?;
            let request = NewScheduleRequest {
                label: Some(label.unwrap_or_else(|| DEFAULT_LABEL.into())),
                days: Some(days),
                from: Some(from.into()),
                to: Some(to.into()),
                entrance,
            };
            let s: ScheduleBody = api.post("/api/schedules", &request)?;
            println!("{}", describe(&s));
            Ok(())
        }
        ScheduleArgs::List => {
            let answer: SchedulesBody = api.get("/api/schedules")?;
            println!(
                "time zone {}, local time {}",
                answer.time_zone,
                answer.local_time.as_deref().unwrap_or("?")
            );
            if !answer.clock_trusted {
                println!("the clock is not confirmed right since the last restart: no schedule opens the door until it is");
            }
            if answer.schedules.is_empty() {
                println!("no schedules");
            }
            for s in &answer.schedules {
                println!("{}", describe(s));
            }
            Ok(())
        }
        ScheduleArgs::Rm(id) => {
            api.delete(&format!("/api/schedules/{}", checked_id(&id)?))?;
            println!("deleted schedule {id}");
            Ok(())
        }
        ScheduleArgs::Pause(id) => {
            let s: ScheduleBody = api.post(&format!("/api/schedules/{}/pause", checked_id(&id)?), &())?;
            println!("{}", describe(&s));
            Ok(())
        }
        ScheduleArgs::Resume(id) => {
            let s: ScheduleBody = api.post(&format!("/api/schedules/{}/resume", checked_id(&id)?), &())?;
            println!("{}", describe(&s));
            Ok(())
        }
    }
}

fn checked_id(id: &str) -> Result<&str, Box<dyn Error>> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("{id:?} is not a schedule id (see `intercom schedule list`)").into());
    }
    Ok(id)
}

/// `1a2b3c4d  mon-fri 08:00-18:00  "deliveries"  open until …` (or `paused`).
fn describe(s: &ScheduleBody) -> String {
    let only = s.entrance.as_ref().map_or(String::new(), |e| format!("{e} only  "));
    let state = match (&s.open_until, s.paused) {
        (_, true) => "paused".to_string(),
        (Some(until), false) => format!("open until {until}"),
        (None, false) => String::new(),
    };
    format!("{}  {} {}-{}  {:?}  {only}{state}", s.id, s.days, s.from, s.to, s.label).trim_end().to_string()
}
