//! `intercom serve`: open the state, bind both listeners, run their accept loops.

use std::error::Error;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::SystemTime;

use crate::config::Config;
use crate::daemon::expiry;
use crate::daemon::notify::Notifier;
use crate::http::connections::{self, Site};
use crate::http::{Limits, Response};
use crate::model::record::Record;
use crate::store::codes::CodeStore;
use crate::store::history::{self, History};
use crate::store::state::Store;
use crate::store::storage::{self, Health};
use crate::store::token;
use crate::system::boot::Boot;
use crate::system::watchdog;
use crate::web::control::{self, Control};
use crate::web::webhook::{self, Webhook};

pub fn run(config: Config) -> Result<(), Box<dyn Error>> {
    let config = Arc::new(config);
    warn_about_risky_settings(&config);
    // Made now, so the id names this process from its start (`doctor` compares them).
    log::debug!("instance {}", crate::util::instance_id());
    // A broken state disk never stops the start: it is reported (log, page, API) and the
    // window stays closed, so calls are forwarded.
    let health = Health::new();
    let boot = Boot::detect();
    let store = Arc::new(Store::open(&config.state_dir, config.max_window, boot.clone(), health.clone()));
    let notifier = Notifier::start(&config)?;
    // Every record the history writes goes on to the notifier and Home Assistant, each
    // through its own bounded queue.
    let mut sinks: Vec<history::Sink> = Vec::new();
    if let Some(n) = notifier {
        sinks.push(Box::new(move |r: &Record| n.submit(r)));
    }
    #[cfg(feature = "mqtt")]
    let bridge = config.mqtt.as_ref().map(|_| crate::mqtt::Bridge::new());
    #[cfg(feature = "mqtt")]
    if let Some(b) = bridge.clone() {
        sinks.push(Box::new(move |r: &Record| b.submit(r)));
    }
    let sink = (!sinks.is_empty())
        .then(|| Box::new(move |r: &Record| sinks.iter().for_each(|s| s(r))) as history::Sink);
    let history = History::open(&config.state_dir, sink, health);
    // Every window change becomes a record, in the order the store made them.
    let observed = history.clone();
    store.set_observer(Box::new(move |change, time| {
        observed.record(&Record::window(change, time));
    }));
    let newest_record = history.newest_time();
    store.check_at_start(SystemTime::now(), newest_record);
    let mut retry: Vec<Arc<dyn storage::Retry>> = vec![store.clone(), history.clone()];
    let codes = Arc::new(CodeStore::open(&config.state_dir, boot, SystemTime::now()));
    // The history saw that time: a clock behind it went back while we were down (a
    // restart in the same boot), and a code that ended since must not work again.
    if let Some(t) = newest_record {
        codes.observe_clock(t);
    }
    let token = match &config.control.token {
        Some(t) => t.clone(),
        None => {
            let keeper = Arc::new(token::Keeper::new(&config.state_dir));
            retry.push(keeper.clone());
            keeper.load_or_create()?
        }
    };
    storage::watch(retry)?;

    // Bind both before serving either, so a port clash fails the start as a whole.
    let bind = |addr, what: &str| {
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
    };
    let webhook_socket = bind(config.webhook.listen, "webhook.listen")?;
    let control_socket = bind(config.control.listen, "control.listen")?;
    // Tests start us on port 0 and read the real ports from these lines.
    log::info!("webhook listening on {}", webhook_socket.local_addr()?);
    log::info!("control listening on {}", control_socket.local_addr()?);

    expiry::watch(store.clone(), codes.clone())?;
    #[cfg(feature = "mqtt")]
    if let (Some(b), Some(m)) = (&bridge, &config.mqtt) {
        b.start(config.clone(), m.clone(), store.clone(), codes.clone(), history.clone())?;
    }
    #[cfg(not(feature = "mqtt"))]
    if config.mqtt.is_some() {
        log::error!("the config has an mqtt section, but this build has no MQTT support (cargo feature `mqtt`): Home Assistant will not see the intercom");
    }
    let (webhook_addr, control_addr) = (webhook_socket.local_addr()?, control_socket.local_addr()?);
    let checked = store.clone();
    let wedged = history.clone();
    let probe_timeout = watchdog::probe_timeout(watchdog::interval_from_env().unwrap_or_default());
    // For systemd's watchdog: both listeners answer, the history's disk is not wedged
    // (a restart is the only cure for a write stuck in the kernel), and the state lock
    // can be taken.
    watchdog::start(Box::new(move || {
        if let Some(stuck) = wedged.stuck_for().filter(|s| *s > history::WEDGED_AFTER) {
            return Err(format!("an event log write has hung for {stuck:?}"));
        }
        connections::probe(webhook_addr, probe_timeout).map_err(|e| format!("webhook listener: {e}"))?;
        connections::probe(control_addr, probe_timeout).map_err(|e| format!("control listener: {e}"))?;
        checked.status(SystemTime::now());
        Ok(())
    }))?;
    let connection_lifetime = config.limits.connection_lifetime;
    let webhook = Webhook::new(config.clone(), store.clone(), history.clone(), codes.clone());
    let control = Control { config, store, token, history, codes };
    let webhook_site = Site {
        name: "webhook",
        limits: Limits {
            max_body_bytes: webhook::MAX_BODY_BYTES,
            max_connections: webhook::MAX_CONNECTIONS,
            connection_lifetime,
        },
        handler: Arc::new(move |r| webhook.handle(r)),
        refusal: Response::text,
    };
    let control_site = Site {
        name: "control",
        limits: Limits {
            max_body_bytes: control::MAX_BODY_BYTES,
            max_connections: control::MAX_CONNECTIONS,
            connection_lifetime,
        },
        handler: Arc::new(move |r| control.handle(r)),
        refusal: control::refusal,
    };

    thread::Builder::new()
        .name("webhook-accept".into())
        .spawn(move || connections::serve(webhook_socket, webhook_site))?;
    connections::serve(control_socket, control_site)
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
