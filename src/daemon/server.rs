//! `intercom serve`: bind both listeners, run their accept loops, open the state (on a
//! thread of its own: a state disk that hangs at start must not stop calls, which are
//! forwarded until it answers).

use std::error::Error;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::config::{Config, ENV_TWILIO_AUTH_TOKEN};
use crate::daemon::expiry;
use crate::daemon::notify::Notifier;
use crate::http::connections::{self, Site};
use crate::http::{Limits, Response};
use crate::model::record::Record;
use crate::rules::clock::Clock;
use crate::store::codes::CodeStore;
use crate::store::history::{self, History};
use crate::store::schedules::ScheduleStore;
use crate::store::state::Store;
use crate::store::storage::{self, Health};
use crate::store::token;
use crate::system::boot::Boot;
use crate::system::{tz, watchdog};
use crate::util::ownership;
use crate::web::control::{self, Control};
use crate::web::refusal;
use crate::web::ringing::Ringing;
use crate::web::webhook::{self, Stores, Webhook};

/// How long the stores may take to load before the log says that the state disk does not
/// answer. A healthy SD card reads the few small files in milliseconds; meanwhile calls
/// are answered anyway (as forwards), so this only decides when to say so.
const LOAD_WARN_AFTER: Duration = Duration::from_secs(2);

/// Checking the state directory's owner is a few `stat`s (microseconds; tens of
/// milliseconds from a cold SD card). A hanging disk must not hold the start for longer
/// than this: calls must be answered (forwarded) within 2 s of the start even then, and
/// what follows is bounded on its own.
const STATE_DIR_CHECK_WAIT: Duration = Duration::from_millis(500);

pub fn run(config: Config) -> Result<(), Box<dyn Error>> {
    let config = Arc::new(config);
    crate::system::boot::use_sync_flags(config.clock_sync_flags.as_deref());
    check_risky_settings(&config)?;
    // A state directory someone else can write may hold planted guest codes or an open
    // window: refuse it before reading anything from it.
    check_state_dir_within(&config.state_dir, STATE_DIR_CHECK_WAIT)?;
    // Made now, so the id names this process from its start (`doctor` compares them).
    log::debug!("instance {}", crate::util::instance_id());

    // Listen before touching the state disk: a disk that hangs (a dying SD card, a stuck
    // NFS mount) must not keep the restarted daemon from answering. Both are bound before
    // either serves, so a port clash fails the start as a whole.
    let bind = |addr, what: &str| {
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
    };
    let webhook_socket = bind(config.webhook.listen, "webhook.listen")?;
    let control_socket = bind(config.control.listen, "control.listen")?;
    let (webhook_addr, control_addr) = (webhook_socket.local_addr()?, control_socket.local_addr()?);
    // Tests start us on port 0 and read the real ports from these lines.
    log::info!("webhook listening on {webhook_addr}");
    log::info!("control listening on {control_addr}");

    // Until the stores are loaded the webhook forwards every call from the intercom
    // (and rejects strangers), and the control API answers 503 saying why.
    let webhook = Arc::new(Webhook::new(config.clone()));
    let control: Arc<OnceLock<Control>> = Arc::new(OnceLock::new());
    let connection_lifetime = config.limits.connection_lifetime;
    let limits =
        |max_body_bytes, max_connections| Limits { max_body_bytes, max_connections, connection_lifetime };
    let serving = webhook.clone();
    let webhook_site = Site {
        name: "webhook",
        limits: limits(webhook::MAX_BODY_BYTES, webhook::MAX_CONNECTIONS),
        handler: Arc::new(move |r| serving.handle(r)),
        refusal: Response::text,
    };
    let controls = control.clone();
    let control_site = Site {
        name: "control",
        limits: limits(control::MAX_BODY_BYTES, control::MAX_CONNECTIONS),
        handler: Arc::new(move |r| match controls.get() {
            Some(c) => c.handle(r),
            None => refusal(
                503,
                "starting: the state disk has not answered yet; every call is forwarded until it does",
            ),
        }),
        refusal,
    };
    thread::Builder::new()
        .name("webhook-accept".into())
        .spawn(move || connections::serve(webhook_socket, webhook_site))?;

    // READY=1 now: the listeners answer, which is what a restart is for. While the
    // stores load the self-check passes on the listeners alone: a restart would open the
    // same files and hang the same way, and would only add moments with no listener.
    // Once loaded, a history write hung past WEDGED_AFTER fails it, as always.
    let probe_timeout = watchdog::probe_timeout(watchdog::interval_from_env().unwrap_or_default());
    let loaded = control.clone();
    watchdog::start(Box::new(move || {
        let stuck = loaded.get().and_then(|c| c.history.stuck_for());
        if let Some(stuck) = stuck.filter(|s| *s > history::WEDGED_AFTER) {
            return Err(format!("an event log write has hung for {stuck:?}"));
        }
        connections::probe(webhook_addr, probe_timeout).map_err(|e| format!("webhook listener: {e}"))?;
        connections::probe(control_addr, probe_timeout).map_err(|e| format!("control listener: {e}"))?;
        if let Some(c) = loaded.get() {
            c.store.status(Timestamp::now());
        }
        Ok(())
    }))?;

    let started = Instant::now();
    let watched = control.clone();
    thread::Builder::new().name("load-watch".into()).spawn(move || {
        thread::sleep(LOAD_WARN_AFTER);
        if watched.get().is_none() {
            log::error!(
                "the state disk has not answered within {LOAD_WARN_AFTER:?} of the start (it hangs?): every call from the intercom is forwarded until it does"
            );
        }
    })?;
    thread::Builder::new().name("load-state".into()).spawn(move || {
        match load(config, &webhook) {
            Ok(c) => {
                let _ = control.set(c);
                // Tests wait for this line before they call.
                log::info!("state loaded: serving");
                if started.elapsed() > LOAD_WARN_AFTER {
                    log::warn!("the state disk answered after {:?}: serving normally", started.elapsed());
                }
            }
            // As a failed start was before: systemd starts us again.
            Err(e) => {
                log::error!("cannot start: {e}");
                std::process::exit(1);
            }
        }
    })?;
    connections::serve(control_socket, control_site)
}

/// Opens the stores (each may hang on the disk: this runs on its own thread), hands them
/// to the webhook and makes the control API.
fn load(config: Arc<Config>, webhook: &Webhook) -> Result<Control, Box<dyn Error>> {
    // Again, unbounded on this thread: if the disk did not answer the bounded check at
    // start, nothing is read from the directory until it has passed.
    ownership::check_state_dir(&config.state_dir)?;
    // A broken state disk never stops the start: it is reported (log, page, API) and the
    // window stays closed, so calls are forwarded.
    let health = Health::new();
    let boot = Boot::detect();
    // The one clock policy that every store judges its readings by.
    let clock = Arc::new(Clock::new(Box::new(crate::system::boot::clock_synced_now)));
    let dir = &config.state_dir;
    let store = Arc::new(Store::open(dir, config.max_window, boot.clone(), health.clone(), clock.clone()));
    let ringing = Arc::new(Ringing::new(&config));
    let notifier = Notifier::start(&config, ringing.clone())?;
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
    let history = History::open(dir, sinks, health.clone());
    ringing.attach(history.clone());
    // Every window change becomes a record, in the order the store made them.
    let observed = history.clone();
    store.set_observer(Box::new(move |change, time| {
        observed.record(&Record::window(change, time));
    }));
    // The history saw that time: a clock behind it went back while we were down (a
    // restart in the same boot), and no window, code or schedule may go by it.
    if let Some(t) = history.newest_time() {
        clock.saw_earlier(t);
    }
    store.check_at_start(Timestamp::now());
    let codes = Arc::new(CodeStore::open(dir, boot.clone(), Timestamp::now(), clock.clone(), health.clone()));
    let mut retry: Vec<Arc<dyn storage::Retry>> = vec![store.clone(), history.clone(), codes.clone()];
    let local = tz::detect();
    log::info!("local time zone for schedules: {}", local.name);
    let schedules = Arc::new(ScheduleStore::open(dir, local, boot, clock.clone(), health.clone()));
    retry.push(schedules.clone());
    let token = match &config.control.token {
        Some(t) => t.clone(),
        None => {
            let keeper = Arc::new(token::Keeper::new(dir));
            retry.push(keeper.clone());
            keeper.load_or_create()?
        }
    };
    let devices = Arc::new(crate::store::devices::Devices::open(dir, health));
    retry.push(devices.clone());
    storage::watch(retry)?;
    expiry::watch(store.clone())?;
    #[cfg(feature = "mqtt")]
    if let (Some(b), Some(m)) = (&bridge, &config.mqtt) {
        // The button acts as `POST /api/let-in` does, on the call that rings now.
        let (now, act) = (ringing.clone(), ringing.clone());
        let hooks = crate::mqtt::RingHooks {
            now: Box::new(move || now.now()),
            let_in: Box::new(move |who| {
                let call = act.now().ok_or("nobody is ringing now")?.call;
                act.let_in(&call, who).map_err(|e| e.message())
            }),
        };
        b.start(config.clone(), m.clone(), store.clone(), codes.clone(), history.clone(), hooks)?;
    }
    #[cfg(not(feature = "mqtt"))]
    if config.mqtt.is_some() {
        log::error!("the config has an mqtt section, but this build has no MQTT support (cargo feature `mqtt`): Home Assistant will not see the intercom");
    }
    crate::system::boot::watch_sync()?;
    webhook.attach(Stores {
        store: store.clone(),
        history: history.clone(),
        codes: codes.clone(),
        schedules: schedules.clone(),
        ringing: ringing.clone(),
    });
    Ok(Control { config, store, token, history, codes, devices, schedules, ringing, clock })
}

fn check_risky_settings(config: &Config) -> Result<(), String> {
    match (&config.twilio.auth_token, config.webhook.allow_unsigned) {
        (None, false) => return Err(format!("twilio.auth_token (or {ENV_TWILIO_AUTH_TOKEN}) is not set, so anyone who finds the webhook URL could fake a call from the intercom: set it (a `serve` started by hand does not read intercom.env), or for a test setup set webhook.allow_unsigned to true")),
        (None, true) => log::warn!("webhook.allow_unsigned: webhook signatures are NOT checked; anyone who finds the webhook URL can fake a call from the intercom and be let in while a window is open"),
        (Some(_), _) => {}
    }
    if config.intercoms.is_empty() {
        log::warn!(
            "neither intercom_number nor intercoms is set: every call is rejected unless the webhook URL sets ExpectedFrom"
        );
    }
    Ok(())
}

fn check_state_dir_within(dir: &Path, wait: Duration) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_path_buf();
    let shown = dir.display().to_string();
    thread::Builder::new()
        .name("state-dir-check".into())
        .spawn(move || tx.send(ownership::check_state_dir(&dir)))
        .map_err(|e| format!("cannot start the state directory check: {e}"))?;
    rx.recv_timeout(wait).unwrap_or_else(|_| {
        log::warn!("cannot check who owns the state directory {shown}: its disk does not answer");
        Ok(())
    })
}
