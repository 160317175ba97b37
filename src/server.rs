//! `intercom serve`: open the state, bind both listeners, run their accept loops.

use std::error::Error;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use crate::config::Config;
use crate::connections;
use crate::control::{self, Control};
use crate::expiry;
use crate::history::{self, History};
use crate::http::Limits;
use crate::notify::Notifier;
use crate::record::Record;
use crate::state::Store;
use crate::webhook::{self, Webhook};

pub fn run(config: Config) -> Result<(), Box<dyn Error>> {
    let config = Arc::new(config);
    warn_about_risky_settings(&config);
    let store = Arc::new(Store::open(&config.state_dir, config.max_window)?);
    let notifier = Notifier::start(&config)?;
    let sink = notifier.map(|n| Box::new(move |r: &Record| n.submit(r)) as history::Sink);
    let history = Arc::new(History::open(&config.state_dir, sink)?);
    // Every window change becomes a record, in the order the store made them.
    let observed = history.clone();
    store.set_observer(Box::new(move |change, time| observed.record(&Record::window(change, time))));
    let token = match &config.control.token {
        Some(t) => t.clone(),
        None => store.load_or_create_token()?,
    };

    // Bind both before serving either, so a port clash fails the start as a whole.
    let bind = |addr, what: &str| {
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
    };
    let webhook_socket = bind(config.webhook.listen, "webhook.listen")?;
    let control_socket = bind(config.control.listen, "control.listen")?;
    // Tests start us on port 0 and read the real ports from these lines.
    log::info!("webhook listening on {}", webhook_socket.local_addr()?);
    log::info!("control listening on {}", control_socket.local_addr()?);

    expiry::watch(store.clone())?;
    let webhook = Webhook::new(config.clone(), store.clone(), history.clone());
    let control = Control { config, store, token, history };
    let webhook_limits = Limits { max_body_bytes: webhook::MAX_BODY_BYTES };
    let control_limits = Limits { max_body_bytes: control::MAX_BODY_BYTES };

    thread::Builder::new().name("webhook-accept".into()).spawn(move || {
        connections::serve(webhook_socket, "webhook", webhook_limits, Arc::new(move |r| webhook.handle(r)))
    })?;
    connections::serve(control_socket, "control", control_limits, Arc::new(move |r| control.handle(r)))
}

fn warn_about_risky_settings(config: &Config) {
    if config.twilio.auth_token.is_none() {
        log::warn!("*****************************************************************");
        log::warn!("twilio.auth_token is not set: webhook signatures are NOT checked.");
        log::warn!("Anyone who finds the webhook URL can fake a call from the intercom");
        log::warn!("and be let in while a window is open. Set it before going live.");
        log::warn!("*****************************************************************");
    }
    if config.intercom_number.is_none() {
        log::warn!(
            "intercom_number is not set: every call is rejected unless the webhook URL sets ExpectedFrom"
        );
    }
}
