//! The bridge's thread: keeps one connection to the broker (reconnecting with a capped
//! backoff), announces the device, keeps the retained state topics true, sends ring
//! events, and turns Home Assistant's commands into the same state calls the API makes.
//!
//! Nothing here runs on a request thread except [`Bridge::submit`], which only pushes
//! onto a bounded queue: a broker that hangs, refuses us or is gone delays no call.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::client::Client;
use super::codec::{Connect, Packet};
use super::discovery::{self, on_off, Topics, OFF, OFFLINE, ON, ONLINE, PRESS};
use crate::config::{Config, MqttConfig};
use crate::model::api::RingingBody;
use crate::model::record::Record;
use crate::store::codes::CodeStore;
use crate::store::history::History;
use crate::store::state::Store;
use crate::util::queue::DropOldest;
use crate::util::ratelog::{Limiter, RateLog};

/// Records waiting for the bridge. Events come a few a day; while the broker is away the
/// queue is emptied every backoff step anyway, so this only bounds a burst.
pub const QUEUE_CAPACITY: usize = 32;
/// The first pause before reconnecting, doubled after each failure up to [`MAX_BACKOFF`]:
/// a broker restart is back within a second or two.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause: Home Assistant sees the intercom again within a minute of its
/// broker's return, and a broker that is gone for good costs one log line a minute.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A connection that lasted this long was a good one: the next loss starts the backoff
/// over. A broker that accepts and drops us at once keeps doubling it.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How often the state topics are checked without news: the time left counts down in
/// minutes, and a storage problem or a codes lockout may change without a record.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);
/// Who changed the window, in the history and the log.
pub const SOURCE: &str = "home-assistant";
/// Commands acted on per [`COMMAND_INTERVAL`]; the rest are ignored and counted. A
/// person or an automation sends a few in a row at most, while each command acted on
/// writes the state file and a history record: a looping automation, or anyone who may
/// publish, must not wear the SD card or push the resident's records out of the bounded
/// history. On average 2 a second.
pub const MAX_COMMANDS: u32 = 20;
pub const COMMAND_INTERVAL: Duration = Duration::from_secs(10);

static BAD_COMMANDS: RateLog = RateLog::new();
static TOO_MANY_COMMANDS: RateLog = RateLog::new();

/// The call that rings, as `daemon/server.rs` hands it over: who rings now, and letting
/// them in as `POST /api/let-in` does (given who did it; the error in words).
pub struct RingHooks {
    pub now: Box<dyn Fn() -> Option<RingingBody> + Send>,
    pub let_in: Box<LetIn>,
}

type LetIn = dyn Fn(&str) -> Result<(), String> + Send;

/// The handle the rest of the daemon holds: records go in, the thread takes them out.
pub struct Bridge {
    queue: DropOldest<Record>,
}

impl Bridge {
    pub fn new() -> Arc<Bridge> {
        Arc::new(Bridge { queue: DropOldest::new(QUEUE_CAPACITY) })
    }

    /// Queues a record for Home Assistant; never blocks. Called under the state lock.
    pub fn submit(&self, record: &Record) {
        self.queue.push(record.clone());
    }

    /// Starts the thread. The history's newest record is the last-event sensor's value
    /// until something happens; the thread reads it, so a hanging disk delays no start.
    pub fn start(
        self: &Arc<Self>,
        config: Arc<Config>,
        settings: MqttConfig,
        store: Arc<Store>,
        codes: Arc<CodeStore>,
        history: Arc<History>,
        ring: RingHooks,
    ) -> io::Result<()> {
        let topics = Topics::new(&settings.topic_prefix, &settings.discovery_prefix);
        let worker = Worker {
            bridge: self.clone(),
            config,
            settings,
            topics,
            store,
            codes,
            ring,
            ringing: None,
            last: None,
            published: HashMap::new(),
            commands: Limiter::new(COMMAND_INTERVAL, MAX_COMMANDS),
        };
        thread::Builder::new().name("mqtt".into()).spawn(move || worker.run(&history))?;
        Ok(())
    }
}

struct Worker {
    bridge: Arc<Bridge>,
    config: Arc<Config>,
    settings: MqttConfig,
    topics: Topics,
    store: Arc<Store>,
    codes: Arc<CodeStore>,
    ring: RingHooks,
    /// The call that rang at the last look (every read's timeout, so it shows promptly).
    ringing: Option<RingingBody>,
    last: Option<Record>,
    /// What each state topic last got on this connection, so only changes are sent.
    published: HashMap<String, String>,
    commands: Limiter,
}

impl Worker {
    fn run(mut self, history: &History) {
        self.last = history.newest(1).ok().and_then(|r| r.into_iter().next());
        let broker = format!("{}:{}", self.settings.host, self.settings.port());
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            match self.connect() {
                Ok(mut client) => {
                    log::info!("MQTT: connected to {broker}; Home Assistant sees the intercom");
                    let e = match self.session(&mut client) {
                        Ok(never) => match never {},
                        Err(e) => e,
                    };
                    log::warn!("MQTT: lost the connection to {broker}: {e}; reconnecting");
                    if started.elapsed() >= STABLE_AFTER {
                        backoff = FIRST_BACKOFF;
                    }
                }
                Err(e) => log::warn!("MQTT: cannot connect to {broker}: {e}; next try in {backoff:?}"),
            }
            self.idle(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn connect(&self) -> Result<Client, String> {
        // Not cut to the 23 bytes a strict 3.1.1 broker must accept (3.1.3.1): two
        // intercoms whose prefixes share a start would take each other's connection, and
        // the brokers Home Assistant users run (Mosquitto, EMQX) take longer ids.
        let id = format!("intercom-{}", self.topics.node);
        let hello = Connect {
            client_id: &id,
            keep_alive_secs: super::client::KEEP_ALIVE.as_secs() as u16,
            username: self.settings.username.as_deref(),
            password: self.settings.password.as_ref().map(|p| p.expose()),
            will_topic: &self.topics.availability,
            will_payload: OFFLINE.as_bytes(),
        };
        Client::connect(&self.settings.host, self.settings.port(), self.settings.tls, &hello)
    }

    /// While disconnected: keeps the newest record for the last-event sensor; ring
    /// events are dropped, since a doorbell minutes late is noise.
    fn idle(&mut self, pause: Duration) {
        let until = Instant::now() + pause;
        while let Some(left) = until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            if let Some(r) = self.bridge.queue.pop_within(left) {
                self.last = Some(r);
            }
        }
    }

    /// Runs one connection until it fails.
    fn session(&mut self, client: &mut Client) -> Result<std::convert::Infallible, io::Error> {
        self.announce(client)?;
        client.subscribe(&self.topics.subscriptions())?;
        let mut refreshed = Instant::now();
        loop {
            let ringing = (self.ring.now)();
            let mut dirty = ringing != self.ringing;
            self.ringing = ringing;
            while let Some(r) = self.bridge.queue.pop_within(Duration::ZERO) {
                self.send_record(client, r)?;
                dirty = true;
            }
            for packet in client.read()? {
                match packet {
                    Packet::Publish { topic, payload, retain, .. } => {
                        let text = String::from_utf8_lossy(&payload);
                        dirty |= self.on_message(client, &topic, text.trim(), retain)?;
                    }
                    Packet::SubAck { codes, .. } if codes.contains(&0x80) => {
                        log::warn!("MQTT: the broker refused a subscription: Home Assistant's commands will not arrive (check the broker's ACL for {}/#)", self.topics.node);
                    }
                    _ => {}
                }
            }
            if dirty || refreshed.elapsed() >= REFRESH_INTERVAL {
                self.send_state(client)?;
                refreshed = Instant::now();
            }
            client.keep_alive()?;
        }
    }

    /// Discovery, the whole state, the last event, then `online`: Home Assistant has
    /// every entity and value before it shows the device available.
    fn announce(&mut self, client: &mut Client) -> io::Result<()> {
        for (topic, payload) in discovery::configs(&self.topics) {
            client.publish(&topic, payload.to_string().as_bytes(), true)?;
        }
        self.published.clear();
        self.send_state(client)?;
        self.send_last_event(client)?;
        client.publish(&self.topics.availability, ONLINE.as_bytes(), true)
    }

    fn send_record(&mut self, client: &mut Client, r: Record) -> io::Result<()> {
        let event = discovery::ring_event(&r);
        self.last = Some(r);
        self.send_last_event(client)?;
        let Some(event) = event else { return Ok(()) };
        client.publish(&self.topics.of("ring", "event"), event.to_string().as_bytes(), false)
    }

    fn send_last_event(&self, client: &mut Client) -> io::Result<()> {
        let Some(r) = &self.last else { return Ok(()) };
        let topic = |kind| self.topics.of("last_event", kind);
        client.publish(&topic("state"), discovery::last_event_state(r).as_bytes(), true)?;
        client.publish(&topic("attributes"), &serde_json::to_vec(r).unwrap_or_default(), true)
    }

    /// The retained state topics whose value changed. A lock held by a hanging disk
    /// write skips this round (the next refresh tries again) rather than stall pings.
    fn send_state(&mut self, client: &mut Client) -> io::Result<()> {
        let now = Timestamp::now();
        let mut values = Vec::new();
        if let Some(s) = self.store.status_within(now, crate::util::LOCK_WAIT) {
            values.push(("window", "state", on_off(s.is_open()).to_string()));
            values.push(("time_left", "state", s.remaining_seconds.div_ceil(60).to_string()));
            values.push(("storage_problem", "state", on_off(s.storage_problem.is_some()).to_string()));
        }
        if let Some(paused) = self.codes.paused(now) {
            values.push(("codes_paused", "state", on_off(paused).to_string()));
        }
        // The call's entrance and start are the ringing sensor's attributes.
        let attributes = self.ringing.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default());
        values.push(("ringing", "state", on_off(attributes.is_some()).to_string()));
        values.push(("ringing", "attributes", attributes.unwrap_or("{}".into())));
        for (object, kind, value) in values {
            let topic = self.topics.of(object, kind);
            if self.published.get(&topic) != Some(&value) {
                client.publish(&topic, value.as_bytes(), true)?;
                self.published.insert(topic, value);
            }
        }
        Ok(())
    }

    /// A message on a subscribed topic, its payload as trimmed text; true if the state may
    /// have changed.
    fn on_message(&mut self, client: &mut Client, topic: &str, text: &str, retain: bool) -> io::Result<bool> {
        if topic == self.topics.ha_status {
            // Home Assistant restarted (its birth message): it wants discovery again.
            if text == ONLINE && !retain {
                self.announce(client)?;
            }
            return Ok(false);
        }
        if retain {
            // A retained command would act again at every reconnect: a command counts
            // only when it is sent.
            BAD_COMMANDS.warn(format_args!(
                "MQTT: ignored a retained message on {topic}; clear it with: mosquitto_pub -r -n -t {topic}"
            ));
            return Ok(false);
        }
        match self.commands.admit(Instant::now()) {
            None => {
                TOO_MANY_COMMANDS.warn(format_args!(
                    "MQTT: more than {MAX_COMMANDS} commands in {COMMAND_INTERVAL:?}: the rest are ignored"
                ));
                return Ok(false);
            }
            Some(0) => {}
            Some(n) => log::warn!(
                "MQTT: {n} commands before this one were ignored (more than {MAX_COMMANDS} in {COMMAND_INTERVAL:?})"
            ),
        }
        let now = Timestamp::now();
        let window = topic == self.topics.of("window", "set");
        match text {
            ON if window => self.open(now, false),
            OFF if window => {
                self.store.close_window(now, SOURCE);
            }
            // The one-shot window: open until the first visitor (or default_window).
            PRESS if topic == self.topics.of("next_visitor", "press") => self.open(now, true),
            PRESS if topic == self.topics.of("let_in", "press") => {
                if let Err(e) = (self.ring.let_in)(SOURCE) {
                    log::info!("MQTT: Home Assistant's let-in button changed nothing: {e}");
                }
            }
            _ => BAD_COMMANDS.warn(format_args!(
                "MQTT: ignored {:?} on {topic} (expected {})",
                crate::util::loggable(text),
                if window { "ON or OFF" } else { PRESS }
            )),
        }
        Ok(true)
    }

    fn open(&self, now: Timestamp, once: bool) {
        // The same call and checks as `POST /api/open` with an empty body (and `once`).
        if let Err(e) = self.store.open_window(self.config.default_window, once, now, SOURCE) {
            log::warn!("MQTT: Home Assistant asked to open the window: {e}");
        }
    }
}
