//! The household part of the webhook's decisions: what lets a call in besides an open
//! window (a schedule, a one-shot window), who is rung now (quiet hours), and
//! `/voice/next`, where a sequential ring order's `<Dial action>` comes back.

use jiff::Timestamp;

use super::{call_request, Answered, Call, Webhook, HANGING_DISK_LOG};
use crate::config::ring::Order;
use crate::http::HttpError;
use crate::model::phone::PhoneNumber;
use crate::model::record::Decision;
use crate::rules::ring;
use crate::store::state::{OnceUse, Status};

impl Webhook {
    /// `/voice/next`: Twilio reports how a dial ended (`DialCallStatus`): the dial to
    /// everyone at once, or to one person of a sequential order. Unless someone took the
    /// call, the next person of a sequential order is rung, and after the last (or
    /// everyone at once) the no-answer message is said. The caller is checked again (a
    /// stranger is rejected); nothing is recorded (the call's forward was, on `/voice`).
    pub(super) fn answer_next(&self, call: &Call, now: Timestamp) -> Result<Answered, HttpError> {
        let step = call.step.ok_or_else(|| {
            HttpError::BadRequest(format!("query parameter step: expected 1 to {}", call_request::MAX_STEP))
        })?;
        let next = ring::step(&self.ringing(call, now), step, &self.config.ring, self.config.dial_timeout);
        let nobody = || Decision::NobodyToCall { message: self.config.no_answer_message.clone() };
        let decision = match call.entrance {
            None => Decision::Reject,
            Some(_) if ring::answered(call.dial_status.as_deref()) => Decision::Hangup,
            Some(_) if self.config.ring.order == Order::Simultaneous => nobody(),
            Some(_) => next.unwrap_or_else(nobody),
        };
        Ok(Answered { call: call.answered(decision), records: Vec::new(), if_unrecorded: None })
    }

    /// Who is rung for this call now: `forward_to` (or the request's override), during
    /// quiet hours only the chosen numbers. Quiet hours need a trusted clock, by the
    /// schedules' rule; without one everyone is rung.
    pub(super) fn ringing(&self, call: &Call, now: Timestamp) -> Vec<PhoneNumber> {
        let minute = self.stores().and_then(|s| s.schedules.local_minute(now, crate::util::LOCK_WAIT));
        ring::who(&call.forward_to, &self.config.ring, minute)
    }

    /// What lets this call in, if anything: an open window, else a schedule open now,
    /// else a one-shot window, which does so for the first call from the intercom only
    /// and is closed on disk first ([`Store::use_once`]); a schedule comes before it, so
    /// the one-shot window is kept for a visitor outside the schedule. Any doubt (a
    /// hanging or failing state disk, another call first, an untrusted clock) means no.
    pub(super) fn lets_in(&self, call: &Call, now: Timestamp) -> LetIn {
        // Still loading (a state disk that hangs at start): nothing lets anyone in.
        let Some(stores) = self.stores() else { return LetIn::No };
        let status = stores.store.status_within(now, crate::util::LOCK_WAIT).unwrap_or_else(|| {
            HANGING_DISK_LOG.error(format_args!(
                "the window state is locked by a write that hangs (the disk?): the call is forwarded"
            ));
            Status::closed()
        });
        // A stranger is rejected whatever lets visitors in: it uses nothing up.
        let Some(entrance) = &call.entrance else { return LetIn::No };
        if status.is_open() && !status.once {
            return LetIn::Window;
        }
        if let Some((schedule, _)) =
            stores.schedules.open_now(now, crate::util::LOCK_WAIT, |s| s.applies_to(entrance.name.as_deref()))
        {
            return LetIn::Schedule(schedule.label);
        }
        if !status.is_open() {
            return LetIn::No;
        }
        match stores.store.use_once(now, crate::util::LOCK_WAIT, call.call_sid.as_deref()) {
            OnceUse::Used => LetIn::Window,
            OnceUse::Gone => LetIn::No,
            OnceUse::Unavailable(why) => {
                HANGING_DISK_LOG.error(format_args!(
                    "the one-shot window could not be closed ({why}): the call is forwarded"
                ));
                LetIn::No
            }
        }
    }
}

/// What lets a call from the intercom in.
pub(super) enum LetIn {
    No,
    Window,
    /// A schedule open now, by its label.
    Schedule(String),
}
