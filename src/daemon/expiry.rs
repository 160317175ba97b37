//! The expiry watcher: the one thread that notices windows ending on their own, so the
//! state file says closed and the history gets its `window_expired` without waiting for
//! the next request. Its reading each second is judged by the one clock policy
//! (`rules/clock.rs`), so a step is noticed without any call.

use std::sync::Arc;
use std::time::Duration;
use std::{io, thread};

use jiff::Timestamp;

use crate::store::state::Store;

/// The expiry watcher wakes at least this often, so an expiry is noticed within a second
/// even if the clock is stepped while it sleeps.
pub const EXPIRY_POLL: Duration = Duration::from_secs(1);
/// The shortest sleep, so the watcher never spins on a window that ends "now".
const MIN_SLEEP: Duration = Duration::from_millis(20);

/// Starts the watcher. It sleeps until the stored end (at most [`EXPIRY_POLL`] at a time)
/// and asks the store to expire it; the store reports each expiry once, and a window
/// closed or replaced in the meantime is simply not ended.
pub fn watch(store: Arc<Store>) -> io::Result<()> {
    thread::Builder::new().name("expiry".into()).spawn(move || loop {
        let now = Timestamp::now();
        // Closing always works (in memory at once; the store retries the disk itself).
        store.expire_ended(now);
        let wait = store
            .stored_until()
            .and_then(|until| Duration::try_from(until.duration_since(now)).ok())
            .map_or(EXPIRY_POLL, |d| d.min(EXPIRY_POLL));
        thread::sleep(wait.max(MIN_SLEEP));
    })?;
    Ok(())
}
