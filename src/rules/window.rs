//! The window's rules, pure: what the API shows at a given time, and what a change from
//! one stored end to another means for the history. No I/O, no clock, no locks: the
//! state (`state.rs`) owns those and calls these.

use std::time::{Duration, SystemTime};

use crate::model::api::StatusBody;
use crate::model::record::WindowChange;
use crate::util::time::{ceil_secs, from_unix, rfc3339, unix_secs};

/// The window as the API and the page show it, and what is wrong with the state disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub open_until: Option<SystemTime>,
    pub remaining_seconds: u64,
    /// Set while the state disk has a problem: the page shows it as a banner.
    pub storage_problem: Option<String>,
    /// The window is for the next visitor only: the first unlock closes it.
    pub once: bool,
}

impl Status {
    pub fn closed() -> Status {
        Status { open_until: None, remaining_seconds: 0, storage_problem: None, once: false }
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    /// The API's view.
    pub fn body(&self) -> StatusBody {
        StatusBody {
            open: self.is_open(),
            open_until: self.open_until.map(rfc3339),
            remaining_seconds: self.remaining_seconds,
            storage_problem: self.storage_problem.clone(),
            instance: None,
            once: self.is_open() && self.once,
            schedule: None,
            codes_paused: None,
            ringing: None,
        }
    }
}

/// What a write of `new` over `previous` means: a window that already ended expired (even
/// if nobody noticed yet), then the new one opened, or the running one was closed.
pub fn changes(
    previous: Option<u64>,
    new: Option<u64>,
    once: bool,
    now: SystemTime,
    source: &str,
) -> Vec<WindowChange> {
    let now_secs = unix_secs(now);
    let at = from_unix;
    let mut out = Vec::new();
    let running = match previous {
        Some(p) if at(p) <= now => {
            out.push(WindowChange::Expired { until: at(p) });
            false
        }
        Some(_) => true,
        None => false,
    };
    match new {
        Some(until) => out.push(WindowChange::Opened {
            until: at(until),
            duration: Duration::from_secs(until.saturating_sub(now_secs)),
            source: source.to_string(),
            once,
        }),
        None if running => out.push(WindowChange::Closed { source: source.to_string() }),
        None => {}
    }
    out
}

pub struct Checked {
    pub status: Status,
    /// The stored end is further away than `max_window`: the clock moved.
    pub clock_jumped: bool,
}

/// The window ending at `open_until` (unix seconds), for one visitor if `once`, as seen
/// at `now`.
pub fn status_at(open_until: Option<u64>, once: bool, now: SystemTime, max_window: Duration) -> Checked {
    let closed = Status::closed();
    let Some(until) = open_until.map(from_unix) else {
        return Checked { status: closed, clock_jumped: false };
    };
    match until.duration_since(now) {
        Ok(left) if left.is_zero() => Checked { status: closed, clock_jumped: false },
        // One second of slack: `until` was rounded up to a whole second.
        Ok(left) if left > max_window + Duration::from_secs(1) => {
            Checked { status: closed, clock_jumped: true }
        }
        Ok(left) => Checked {
            status: Status {
                open_until: Some(until),
                remaining_seconds: ceil_secs(left),
                storage_problem: None,
                once,
            },
            clock_jumped: false,
        },
        Err(_) => Checked { status: closed, clock_jumped: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn clock_jump_reads_as_closed() {
        let c = status_at(Some(100 * 3600), false, at(0), 12 * HOUR);
        assert!(c.clock_jumped && !c.status.is_open());
        let once = status_at(Some(12 * 3600), true, at(0), 12 * HOUR).status;
        assert!(once.is_open() && once.once && once.body().once);
        assert!(!status_at(None, true, at(0), HOUR).status.body().once, "closed is never once");
    }
}
