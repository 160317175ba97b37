//! `intercom schedule add|list|rm|pause|resume`: schedules through the running server's
//! control API, like `open` and `code`, so the server stays the only writer of
//! `schedules.json`. `mod.rs` parses the arguments; this module checks them in the
//! user's terms, makes the requests and prints the answers.

use std::error::Error;

use serde_json::{json, Value};

use crate::cli::codes::ApiCall;

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

pub fn run(args: ScheduleArgs, api: ApiCall) -> Result<(), Box<dyn Error>> {
    match args {
        ScheduleArgs::Add { days, range, label, entrance } => {
            // En dash too: "08:00–18:00" is how people write it.
            let (from, to) = range
                .split_once(['-', '–'])
                .ok_or_else(|| format!("{range:?} is not a time range: write it like 08:00-18:00"))?;
            let mut body = json!({
                "label": label.as_deref().unwrap_or(DEFAULT_LABEL),
                "days": days,
                "from": from,
                "to": to,
            });
            if let Some(e) = entrance {
                body["entrance"] = json!(e);
            }
            let s = api("POST", "/api/schedules", &body.to_string())?;
            println!("{}", describe(&s)?);
            Ok(())
        }
        ScheduleArgs::List => {
            let answer = api("GET", "/api/schedules", "")?;
            let list = answer["schedules"].as_array().ok_or("the server answered without \"schedules\"")?;
            // The server's wall clock, to the minute as every time the CLI shows.
            let local_time = answer["local_time"].as_str().unwrap_or("?");
            let local_time = local_time
                .parse::<jiff::civil::DateTime>()
                .map_or(local_time.to_string(), |t| t.strftime("%Y-%m-%d %H:%M").to_string());
            println!("time zone {}, local time {local_time}", answer["time_zone"].as_str().unwrap_or("?"));
            if answer["clock_trusted"] == false {
                println!("the clock is not confirmed right since the last restart: no schedule opens the door until it is");
            }
            if list.is_empty() {
                println!("no schedules");
            }
            for s in list {
                println!("{}", describe(s)?);
            }
            Ok(())
        }
        ScheduleArgs::Rm(id) => {
            api("DELETE", &format!("/api/schedules/{}", checked_id(&id)?), "")?;
            println!("deleted schedule {id}");
            Ok(())
        }
        ScheduleArgs::Pause(id) => {
            let s = api("POST", &format!("/api/schedules/{}/pause", checked_id(&id)?), "")?;
            println!("{}", describe(&s)?);
            Ok(())
        }
        ScheduleArgs::Resume(id) => {
            let s = api("POST", &format!("/api/schedules/{}/resume", checked_id(&id)?), "")?;
            println!("{}", describe(&s)?);
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
fn describe(s: &Value) -> Result<String, Box<dyn Error>> {
    let field = |name: &str| -> Result<&str, Box<dyn Error>> {
        s[name].as_str().ok_or_else(|| format!("the server answered without \"{name}\"").into())
    };
    let only = s["entrance"].as_str().map_or(String::new(), |e| format!("{e} only  "));
    let state = if s["paused"] == true {
        "paused".to_string()
    } else if let Some(until) = s["open_until"].as_str() {
        format!("open until {}", until.parse().map_or(until.to_string(), crate::util::time::local))
    } else {
        String::new()
    };
    Ok(format!(
        "{}  {} {}-{}  {:?}  {only}{state}",
        field("id")?,
        field("days")?,
        field("from")?,
        field("to")?,
        field("label")?
    )
    .trim_end()
    .to_string())
}
