//! The window's rules, pure: what the API shows at a given time, and what a change from
//! one stored end to another means for the history. No I/O, no clock, no locks: the
//! state (`store/state.rs`) owns those and calls these.

use std::time::Duration;

use jiff::Timestamp;

use crate::model::api::StatusBody;
use crate::model::record::WindowChange;
use crate::util::time::{between, ceil_secs};

/// The window as the API and the page show it, and what is wrong with the state disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub open_until: Option<Timestamp>,
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

    /// The API's view, with the longest window one may ask for.
    pub fn body(&self, max_window: Duration) -> StatusBody {
        StatusBody {
            open: self.is_open(),
            open_until: self.open_until,
            remaining_seconds: self.remaining_seconds,
            storage_problem: self.storage_problem.clone(),
            once: self.is_open() && self.once,
            max_window_minutes: max_window.as_secs() / 60,
            ..StatusBody::default()
        }
    }
}

/// What a write of `new` over `previous` means: a window that already ended expired (even
/// if nobody noticed yet), then the new one opened, or the running one was closed.
pub fn changes(
    previous: Option<Timestamp>,
    new: Option<Timestamp>,
    once: bool,
    now: Timestamp,
    source: &str,
) -> Vec<WindowChange> {
    let expired = previous.filter(|p| *p <= now);
    let mut out: Vec<_> = expired.map(|until| WindowChange::Expired { until }).into_iter().collect();
    let running = previous.is_some() && expired.is_none();
    match new {
        Some(until) => out.push(WindowChange::Opened {
            until,
            // In whole seconds from the current one, as the window was made.
            duration: Duration::from_secs(between(crate::util::time::floor(now), until).as_secs()),
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

/// The window ending at `open_until`, for one visitor if `once`, as seen at `now`.
pub fn status_at(open_until: Option<Timestamp>, once: bool, now: Timestamp, max_window: Duration) -> Checked {
    let left = open_until.map_or(Duration::ZERO, |until| between(now, until));
    // One second of slack: `until` was rounded up to a whole second.
    let clock_jumped = left > max_window + Duration::from_secs(1);
    let status = match open_until {
        Some(until) if !left.is_zero() && !clock_jumped => Status {
            open_until: Some(until),
            remaining_seconds: ceil_secs(left),
            storage_problem: None,
            once,
        },
        _ => Status::closed(),
    };
    Checked { status, clock_jumped }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn clock_jump_reads_as_closed() {
        let c = status_at(Some(at(100 * 3600)), false, at(0), 12 * HOUR);
        assert!(c.clock_jumped && !c.status.is_open());
        let once = status_at(Some(at(12 * 3600)), true, at(0), 12 * HOUR).status;
        assert!(once.is_open() && once.once && once.body(HOUR).once);
        assert!(!status_at(None, true, at(0), HOUR).status.body(HOUR).once, "closed is never once");
    }
}
