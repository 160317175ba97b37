//! The expiry watcher: the one thread that notices windows ending on their own, so the
//! state file says closed and the history gets its `window_expired` without waiting for
//! the next request.

use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use crate::state::Store;

/// The expiry watcher wakes at least this often, so an expiry is noticed within a second
/// even if the clock is stepped while it sleeps.
pub const EXPIRY_POLL: Duration = Duration::from_secs(1);
/// The shortest sleep, so a window ending "now" that cannot be recorded (disk full) is
/// retried after a pause instead of spinning.
const MIN_SLEEP: Duration = Duration::from_millis(20);

/// Starts the watcher. It sleeps until the stored end (at most [`EXPIRY_POLL`] at a time)
/// and asks the store to expire it; the store reports each expiry once, and a window
/// closed or replaced in the meantime is simply not ended.
pub fn watch(store: Arc<Store>) -> io::Result<()> {
    thread::Builder::new().name("expiry".into()).spawn(move || {
        let mut failing = false;
        loop {
            let now = SystemTime::now();
            match store.expire_ended(now) {
                Ok(_) => failing = false,
                Err(e) if !failing => {
                    log::error!("could not record the end of the window: {e}; will retry");
                    failing = true;
                }
                Err(_) => {}
            }
            let wait = store
                .stored_until()
                .and_then(|until| until.duration_since(now).ok())
                .map_or(EXPIRY_POLL, |d| d.min(EXPIRY_POLL));
            thread::sleep(wait.max(MIN_SLEEP));
        }
    })?;
    Ok(())
}
