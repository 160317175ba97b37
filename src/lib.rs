//! `intercom`: answers Twilio's voice webhook for a building intercom. During an open
//! window the door tones are played; otherwise the call is forwarded to the resident;
//! a call that is not from the intercom is rejected.
//!
//! # Architecture
//!
//! Synchronous, plain threads, no async runtime. The modules form layers: a module uses
//! modules of lower layers, and of its own layer only where no cycle forms (`config`
//! uses `record`, `expiry` uses `state`, `state`, `history`, `token` and `codes_store`
//! use `storage`, `state` uses `state_file` and `boot`, `boot` uses `clock`, `notify` uses
//! `twilio`, `connections` uses `http`, `call` and `twiml` use `codes`, `cli` dispatches to
//! `codes_cli`, `cli` and `doctor` use `client` and `setup`); never a higher layer. The
//! HTTP infrastructure is kept apart from the domain: it uses only the crate root and
//! itself. `tests/it/layers.rs` holds the same table and fails (so CI fails)
//! on an upward use, a cycle, or a module missing from the table or from this comment.
//!
//! | layer | modules | may use |
//! |---|---|---|
//! | 8 binary | `main.rs` | layers 0-7 |
//! | 7 application | `server.rs`, `cli.rs`, `codes_cli.rs`, `client.rs`, `setup.rs`, `doctor.rs`, `init.rs` | layers 0-6 |
//! | 6 listeners | `webhook.rs`, `control.rs` | layers 0-5 |
//! | 5 HTTP infrastructure | `http.rs`, `connections.rs`, `pool.rs` | layer 0 |
//! | 4 services | `state.rs`, `state_file.rs`, `token.rs`, `history.rs`, `storage.rs`, `boot.rs`, `notify.rs`, `twilio.rs`, `clock.rs`, `expiry.rs`, `codes_store.rs`, `watchdog.rs` | layers 0-3 |
//! | 3 call rules | `call.rs`, `twiml.rs`, `codes.rs`, `window.rs` | layers 0-2 |
//! | 2 vocabulary and config | `record.rs`, `config.rs`, `config_values.rs` | layers 0-1 |
//! | 1 parsers | `form.rs`, `phone.rs`, `signature.rs`, `url.rs`, `retry_after.rs`, `tls.rs`, `local_time.rs` | layer 0 |
//! | 0 crate root | `lib.rs`, `ratelog.rs` | layer 0 |
//!
//! What each owns:
//!
//! - `main.rs`: argument dispatch and logging setup; nothing else. `lib.rs` lists the
//!   modules (a library so the fuzz targets can reach the parsers) and holds the three
//!   helpers every layer may use: `lock` (poison-tolerant), `rfc3339`, `loggable`.
//! - `cli.rs`: argument parsing and the small commands (`open`, `close`, `status`, `url`,
//!   `check-config`, `simulate`, `fallback-twiml`). Client commands talk to the running
//!   server's control API through `client.rs`, so the server is the only writer of the
//!   state. `setup.rs`: `twilio-setup` (and the fallback TwiML); `doctor.rs`: `doctor`,
//!   which checks config, server, tunnel, Twilio, disk and clock. `init.rs`: `init`, the
//!   guided first setup that writes the config and the secrets file.
//! - `server.rs`: `serve`: opens the state, the history and the notifier, wires them
//!   (every window change becomes a history record, every record goes to the notifier),
//!   binds both listeners and runs them. The only module that knows all the services.
//! - `codes_cli.rs`: `intercom code add|list|rm`, through the control API like `open`.
//! - `webhook.rs`: the internet-facing listener: Twilio's webhook, the guest-code keypad
//!   answer (`/voice/code`) and `/healthz`. It never changes the window; it counts a
//!   guest code's use (or a wrong code) through the code store, and appends each decision
//!   (and each refused signature, at a bounded rate it owns) to the history before answering.
//! - `control.rs` (+ `page.html`): the LAN listener: the phone page and the JSON API
//!   (`/api/status`, `/api/open`, `/api/close`, `/api/events`, `/api/codes`), token-protected.
//! - `http.rs`: HTTP/1.1 on the wire: request and response types, reading one request
//!   within limits and a deadline, parsing the head, writing the answer, and the one
//!   `HttpError` type that handlers return; each listener maps it to a response in one
//!   place. `connections.rs`: a listener's accept loop, the connection registry (cap,
//!   eviction of waiting connections, lifetime), the thread per connection that runs the
//!   handler, and the probe that the watchdog's self-check uses.
//!   `pool.rs`: the bounded pool of idle threads that take new connections. None of the
//!   three knows any route or any service.
//! - `ratelog.rs`: warnings an attacker can repeat (refused signatures, 503s) written at
//!   a bounded rate with a count of what was left out, and the counting `Limiter` itself.
//! - `clock.rs`: whether the system clock is synchronized (timesyncd, timedatectl).
//! - `state.rs`: the window and the control token, in the state directory; it reports
//!   every window change to an observer, under its lock, in order; closing always works,
//!   even on a broken disk. `state_file.rs`: the versioned `state.json` format.
//!   `token.rs`: the generated control token in `state_dir/control-token`. `window.rs`:
//!   the window's pure rules (status at a time, what a change means for the history).
//!   `boot.rs`: the boot id and whether the clock is confirmed synchronized, so a window
//!   from before a power cut is not trusted to a clock that may be hours behind.
//!   `expiry.rs`: the thread that ends windows whose time has come. `watchdog.rs`:
//!   systemd's `READY=1` and `WATCHDOG=1` (sent only while a self-check that `server.rs`
//!   builds passes).
//! - `codes_store.rs`: the guest codes and the wrong-code lockout in `state_dir/codes.json`,
//!   written like the state file; a use is on disk before the door opens.
//! - `history.rs`: `state_dir/events.jsonl`, with rotation: appends a record, on disk
//!   before the answer (group commit: concurrent appends share one write and one flush),
//!   and reads the newest ones. It decides nothing about what is recorded.
//! - `storage.rs`: what `state`, `history`, `token` and `codes_store` share about the
//!   disk: atomic writes, moving bad files aside, a failed operation's cause in words, the
//!   storage `Health` that the page and `/api/status` show, and the thread that retries a
//!   failing disk.
//! - `notify.rs`: notifications (Twilio SMS, JSON webhook) of chosen events, through a
//!   bounded queue and a worker thread per target, so they never delay an answer and a
//!   hanging target never delays another. `twilio.rs`: the Twilio REST client (credentials,
//!   requests, error classes) that SMS, `twilio-setup` and `doctor` share.
//! - `call.rs`: the pure decision (reject / unlock / forward) from the caller, the window
//!   and the rules, and whether a guest code turns a forward into a prompt or an unlock;
//!   `twiml.rs` renders a decision as TwiML. `codes.rs`: the guest-code rules (offer the
//!   prompt? is this a right code? lock after wrong ones?), the API's request checks.
//! - `record.rs`: the shared vocabulary, plain data: `Decision`, `CallRecord`,
//!   `WindowChange`, `EventKind` and the `Record` that the history stores, the API lists
//!   and the notifier sends.
//! - `config.rs`: the JSON config, read by serde into typed structs (unknown keys refused
//!   at every depth, each value checked as it is read, one pass for rules that span keys)
//!   and passed explicitly. Raw JSON never reaches a handler. Secrets are `Secret`s, which
//!   never print. `config_values.rs` holds the value types (numbers, durations, URLs,
//!   secrets), each checked as serde reads it so its error carries the dotted key.
//! - `form.rs` parses form/query parameters; `phone.rs` normalises numbers to E.164;
//!   `signature.rs` computes and checks `X-Twilio-Signature`; `url.rs` checks the
//!   configured URLs and cuts a URL down to what may be logged; `retry_after.rs` reads
//!   a `Retry-After` header. Pure functions of their input (the fuzz targets call
//!   them).
//! - `tls.rs`: which CAs outbound HTTPS trusts (the system's bundle, read once); every
//!   HTTP agent takes its TLS settings from there.
//! - `local_time.rs`: times shown to people (CLI, `doctor`) in the system's time zone,
//!   with the zone's name.
//!
//! # Invariants
//!
//! - Dependencies point down the table above. Services never see HTTP: the listeners
//!   translate requests into calls on them. Services do not use each other (except
//!   `expiry` driving `state`, `notify` sending SMS through `twilio`, and the disk
//!   helpers of `storage`, `state_file` and `boot` that the stores share); `server.rs` joins them
//!   with callbacks.
//! - Fail closed: any doubt about the caller, the signature or the stored state means
//!   the door stays shut.
//! - The webhook listener serves no route that changes state, except that a call
//!   from the intercom spends a guest code's use or counts a wrong one; the control listener
//!   serves no TwiML. Routes match raw paths exactly.
//! - Opening the window reaches the disk atomically before memory; closing reaches memory
//!   first and then the disk by a path that needs no space. A bad state file is moved
//!   aside, never deleted. A broken state disk never stops the server: it starts, forwards
//!   every call and says what is wrong. The state mutex is never held across network I/O.
//! - Every limit (sizes, timeouts, thread caps) is a named constant with its reason.
//! - A panicking request thread answers 500 and the daemon goes on (`panic = "unwind"`).
//! - No `unsafe` code of our own (`forbid(unsafe_code)`, here and in `main.rs`).

#![forbid(unsafe_code)]

pub mod boot;
pub mod call;
pub mod cli;
pub mod client;
pub mod clock;
pub mod codes;
pub mod codes_cli;
pub mod codes_store;
pub mod config;
pub mod config_values;
pub mod connections;
pub mod control;
pub mod doctor;
pub mod expiry;
pub mod form;
pub mod history;
pub mod http;
pub mod init;
pub mod local_time;
pub mod notify;
pub mod phone;
pub mod pool;
pub mod ratelog;
pub mod record;
pub mod retry_after;
pub mod server;
pub mod setup;
pub mod signature;
pub mod state;
pub mod state_file;
pub mod storage;
pub mod tls;
pub mod token;
pub mod twilio;
pub mod twiml;
pub mod url;
pub mod watchdog;
pub mod webhook;
pub mod window;

/// Locks a mutex even if a thread panicked while holding it. Every mutex here guards
/// state that changes in single assignments or appends whole lines, so a poisoned lock
/// holds nothing half-written, and one panicking request must not wedge the daemon.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a call waits for a lock that a disk write may hold (the state's, the guest
/// codes'): a write stuck in the kernel (a hanging SD card) must not stop calls. Short,
/// because a call may meet two such locks and then the history's wait
/// ([`history::APPEND_WAIT`]) before Twilio's 15 s run out; a healthy write takes
/// milliseconds.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often a waiting call tries such a lock again once yielding has not got it: fine
/// enough to add little delay behind a disk write, coarse enough not to burn a core.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(1);
/// Tries that only yield the CPU first: these locks are normally held for microseconds
/// (a status read), so under load a busy lock is almost always free again at once, and a
/// sleep would add a millisecond to the call for nothing (measured with `make bench`).
const LOCK_YIELDS: u32 = 200;

/// Like [`lock`], but gives up after `wait` (`None`): for callers that would rather
/// fail closed than wait behind a write that hangs.
pub(crate) fn lock_within<T>(
    m: &std::sync::Mutex<T>,
    wait: std::time::Duration,
) -> Option<std::sync::MutexGuard<'_, T>> {
    let deadline = std::time::Instant::now() + wait;
    for attempt in 0u32.. {
        match m.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() >= deadline => return None,
            Err(std::sync::TryLockError::WouldBlock) if attempt < LOCK_YIELDS => std::thread::yield_now(),
            Err(std::sync::TryLockError::WouldBlock) => std::thread::sleep(LOCK_POLL),
        }
    }
    None
}

/// A time as RFC 3339 UTC in whole seconds, as the state file, the API and the history write it.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// This process's instance id: 64 random bits, hex, made on first use (`serve` uses it
/// at start). `/healthz` shows it and `/api/status` (token-protected) reports it, so
/// `intercom doctor` can tell that `public_url` reaches this very process and not a stale
/// tunnel or another server. It reveals nothing: it is random and changes at each start.
pub fn instance_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Without randomness the clock makes a weaker but still per-process id.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            bytes = (nanos.as_nanos() as u64 ^ u64::from(std::process::id())).to_be_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// The response header that carries [`instance_id`] on `/healthz`.
pub const INSTANCE_HEADER: &str = "X-Intercom-Instance";

/// Makes a client-supplied string safe for one log line: no controls, bounded length.
pub(crate) fn loggable(s: &str) -> String {
    const MAX_LOGGED_CHARS: usize = 64;
    let clean: String = s.chars().filter(|c| !c.is_control()).take(MAX_LOGGED_CHARS).collect();
    if s.chars().count() > MAX_LOGGED_CHARS {
        format!("{clean}…")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_strips_controls() {
        assert_eq!(loggable("a\nb\x1b[31m"), "ab[31m");
        assert!(loggable(&"x".repeat(100)).ends_with('…'));
    }

    #[test]
    fn lock_within_gives_up_on_a_held_lock_and_takes_a_free_or_poisoned_one() {
        let m = std::sync::Arc::new(std::sync::Mutex::new(1));
        let held = m.lock().unwrap();
        let started = std::time::Instant::now();
        assert!(lock_within(&m, std::time::Duration::from_millis(50)).is_none());
        assert!(started.elapsed() >= std::time::Duration::from_millis(50));
        drop(held);
        assert_eq!(*lock_within(&m, std::time::Duration::ZERO).unwrap(), 1);
        let poison = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = poison.lock().unwrap();
            panic!("poisons the lock on purpose");
        })
        .join();
        assert_eq!(*lock_within(&m, std::time::Duration::ZERO).unwrap(), 1);
    }
}
