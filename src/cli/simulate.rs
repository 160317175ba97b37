//! `intercom simulate --from NUMBER`: the TwiML a call would get now, from the same first
//! decision the webhook makes, on the state files as they are on disk, changing nothing
//! (a one-shot window is not used up). It says why: the window, a schedule (by its
//! label), a one-shot window, and at which entrance. Only the running server knows of a
//! clock step, so it is asked; while it doubts its clock, schedules, quiet hours and
//! codes wait here too.

use std::time::Duration;

use jiff::Timestamp;

use crate::cli::client::Client;
use crate::cli::out::say_raw;
use crate::config::Config;
use crate::model::api::StatusBody;
use crate::model::record::Decision;
use crate::rules::{call, ring};
use crate::store::{schedules, state};
use crate::system::{boot, tz};
use crate::twilio::twiml;

/// How long `simulate` waits for the running server's answer: it is on this machine.
const SERVER_WAIT: Duration = Duration::from_secs(2);

pub fn run(config: &Config, from: &str) -> Result<(), Box<dyn std::error::Error>> {
    // The service's files: this user may not read them (a guess would mislead).
    crate::cli::files::readable(&config.state_dir.join(crate::store::state::STATE_FILE))?;
    boot::use_sync_flags(config.clock_sync_flags.as_deref());
    let now = Timestamp::now();
    let status = state::peek(&config.state_dir, config.max_window, now).unwrap_or_else(|e| {
        eprintln!("intercom: the state file is unreadable ({e}); the server treats the window as closed");
        state::Status::closed()
    });
    let entrance = call::caller(Some(from), &config.intercoms);
    let name = entrance.and_then(|e| e.name.as_deref());
    let this_boot = boot::Boot::detect();
    let mut peek =
        schedules::peek(&config.state_dir, &tz::detect(), &this_boot, boot::clock_synced_now(), now, name);
    // Not running, or not answering in time: the files are all there is to go by.
    let server = Client::new(config, SERVER_WAIT).and_then(|c| c.get::<StatusBody>("/api/status"));
    let doubt = server.ok().and_then(|s| s.clock_doubt);
    if let Some(why) = &doubt {
        eprintln!("{why}");
        peek = schedules::Peek { open: None, local_minute: None };
    }
    let ringing = ring::who(&config.forward_to, &config.ring, peek.local_minute);
    // In the server's order: an ordinary window, a schedule, a one-shot window.
    let schedule = peek.open.filter(|_| entrance.is_some() && (status.once || !status.is_open()));
    let open = status.is_open() || schedule.is_some();
    let (offered, paused) = crate::store::codes::peek_offer(&config.state_dir, &this_boot, open, now);
    let offered = offered && doubt.is_none();
    if let Some(why) = paused {
        eprintln!("guest codes do not work now: {why}");
    }
    let decision = call::first(entrance, open, offered, &ringing, config);
    let why = match (&decision, &schedule) {
        (Decision::Unlock { .. }, Some((label, until))) => {
            format!(" (schedule {label:?}, open until {})", crate::util::time::local(*until))
        }
        (Decision::Unlock { .. }, None) if status.once => {
            " (the next visitor: this ends the one-shot window)".to_string()
        }
        _ => String::new(),
    };
    let at = name.map_or(String::new(), |n| format!(" at {n}"));
    eprintln!("a call from {from}{at} now: {}{why}", decision.name());
    let base = config.webhook.public_url.as_deref().unwrap_or("");
    say_raw!("{}", twiml::render(&decision, &twiml::Callbacks { base, carry: &[], dial_action: true }));
    Ok(())
}
