//! `intercom simulate --from NUMBER`: the TwiML a call would get now, from the state
//! files as the server would read them, changing nothing (a one-shot window is not used
//! up). It says why: the window, a schedule (by its label), a one-shot window, a guest
//! code prompt, or a forward.

use std::error::Error;
use std::time::SystemTime;

use crate::config::Config;
use crate::model::record::Decision;
use crate::rules::call::{self, CallRules};
use crate::store::{schedules, state};
use crate::system::{boot, tz};

pub fn run(config: &Config, from: &str) -> Result<(), Box<dyn Error>> {
    let now = SystemTime::now();
    let status = match state::peek(&config.state_dir, config.max_window, now) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("intercom: the state file is unreadable ({e}); the server treats the window as closed");
            state::Status::closed()
        }
    };
    let rules = CallRules::new(config, &config.intercoms, &config.forward_to);
    let from_intercom = matches!(call::decide(Some(from), true, &rules), Decision::Unlock { .. });
    // In the server's order: an ordinary window, a schedule, a one-shot window.
    let schedule = if from_intercom && (status.once || !status.is_open()) {
        let local = tz::detect();
        schedules::peek(&config.state_dir, &local, &boot::Boot::detect(), boot::clock_synced_now(), now)
    } else {
        None
    };
    let open = status.is_open() || schedule.is_some();
    let decision = call::decide(Some(from), open, &rules);
    let offered = crate::store::codes::peek_offer(&config.state_dir, open, now);
    let action =
        format!("{}{}", config.webhook.public_url.as_deref().unwrap_or(""), crate::web::webhook::CODE_PATH);
    let decision = call::with_code_prompt(decision, offered, &action);
    let note = match (&decision, &schedule) {
        (Decision::Unlock { .. }, Some((label, until))) => {
            format!(" (schedule {label:?}, open until {until})")
        }
        (Decision::Unlock { .. }, None) if status.once => {
            " (the next visitor: this ends the one-shot window)".to_string()
        }
        _ => String::new(),
    };
    let at = call::entrance(Some(from), &rules)
        .and_then(|e| e.name.as_deref())
        .map_or(String::new(), |n| format!(" at {n}"));
    eprintln!("a call from {from}{at} now: {}{note}", decision.name());
    print!("{}", crate::twilio::twiml::render(&decision));
    Ok(())
}
