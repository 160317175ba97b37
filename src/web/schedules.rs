//! The control API's schedules: `GET /api/schedules` (all, with the time zone and
//! whether the clock is trusted), `POST /api/schedules` (add), `DELETE
//! /api/schedules/{id}`, `POST /api/schedules/{id}/pause` and `/resume`. The token is
//! checked by the caller (`control.rs`) before anything here runs.

use jiff::Timestamp;

use crate::config::entrances::Entrance;
use crate::http::{HttpError, Request, Response};
use crate::model::api::{read_request, NewScheduleRequest, ScheduleBody, SchedulesBody};
use crate::rules::schedule::{self, Schedule};
use crate::store::schedules::ScheduleStore;
use crate::store::versioned::AddError;
use crate::web::{json, no_content, refusal};

pub const PREFIX: &str = "/api/schedules";

pub fn route(
    store: &ScheduleStore,
    intercoms: &[Entrance],
    req: &Request,
    now: Timestamp,
) -> Result<Response, HttpError> {
    let rest = req.path.strip_prefix(PREFIX).unwrap_or("");
    let method = req.method.as_str();
    if rest.is_empty() {
        return match method {
            "GET" => Ok(json(200, &list(store, now))),
            "POST" => {
                let bad = |m: String| {
                    HttpError::BadRequest(format!(
                        "{m}; send {{\"label\": \"deliveries\", \"days\": \"mon-fri\", \"from\": \"08:00\", \"to\": \"18:00\"}}"
                    ))
                };
                let request: NewScheduleRequest = read_request(&req.body).map_err(bad)?;
                let new = schedule::from_request(&request, intercoms).map_err(bad)?;
                match store.add(&new) {
                    Ok(s) => Ok(json(201, &one(store, &s, now))),
                    Err(AddError::Full(why)) => Ok(refusal(409, &why)),
                    Err(e) => Err(HttpError::Unavailable(e.to_string())),
                }
            }
            _ => Err(HttpError::MethodNotAllowed("GET, POST")),
        };
    }
    let rest = rest.strip_prefix('/').ok_or(HttpError::NotFound)?;
    let (id, action) = rest.split_once('/').map_or((rest, None), |(id, action)| (id, Some(action)));
    if id.is_empty() {
        return Err(HttpError::NotFound);
    }
    match (action, method) {
        (None, "DELETE") if store.remove(id) => Ok(no_content()),
        (None, "DELETE") => Err(HttpError::NotFound),
        (None, _) => Err(HttpError::MethodNotAllowed("DELETE")),
        (Some(a @ ("pause" | "resume")), "POST") => match store.set_paused(id, a == "pause") {
            Ok(Some(s)) => Ok(json(200, &one(store, &s, now))),
            Ok(None) => Err(HttpError::NotFound),
            Err(e) => Err(HttpError::Unavailable(e.to_string())),
        },
        (Some("pause" | "resume"), _) => Err(HttpError::MethodNotAllowed("POST")),
        (Some(_), _) => Err(HttpError::NotFound),
    }
}

/// One schedule as it stands now (open or not, as the list would say).
fn one(store: &ScheduleStore, s: &Schedule, now: Timestamp) -> ScheduleBody {
    let (listed, _) = store.list(now);
    let open_until = listed.iter().find(|l| l.schedule.id == s.id).and_then(|l| l.open_until);
    s.body(open_until)
}

fn list(store: &ScheduleStore, now: Timestamp) -> SchedulesBody {
    let (listed, trusted) = store.list(now);
    SchedulesBody {
        schedules: listed.iter().map(|l| l.schedule.body(l.open_until)).collect(),
        time_zone: store.time_zone().to_string(),
        local_time: store.local_time(now),
        clock_trusted: trusted,
    }
}
