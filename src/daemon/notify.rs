//! Notifications of chosen events: an SMS through Twilio's REST API to each of
//! `notify.sms_to`, a JSON POST to `notify.webhook_url` (Home Assistant, …), and ntfy's
//! JSON publish to `notify.ntfy`, which also gets every ring. A ring's notification
//! carries its one-time link while the call still rings when it is sent (`let_in_url`;
//! ntfy's "Let them in" button), from `web/ringing.rs`.
//!
//! Nothing here runs on a request thread except [`Notifier::submit`], which only pushes
//! onto bounded queues and never blocks: when a queue is full its oldest job is dropped
//! with a warning. Each target has its own queue and worker thread, so a target that
//! hangs or asks us to wait delays only its own notifications, never another's. A worker
//! sends with a timeout per attempt and retries transient failures (transport errors and
//! timeouts, 429, 5xx) after growing pauses, or after the pause a 429 or 503 asks for in
//! `Retry-After` (capped); any other answer is final. A job that finally fails is
//! logged, never retried later: a door event hours late is worse than none.
//!
//! Secrets stay out of logs: the webhook URL is logged as its origin only (its path and
//! query often are the secret), Twilio credentials never. SMS go through [`crate::twilio::rest`],
//! with the same credentials as `twilio-setup`.

use std::sync::Arc;
use std::time::Duration;
use std::{io, thread};

use jiff::Timestamp;

use crate::config::url::url_origin;
use crate::config::{Config, NtfyConfig, Secret};
use crate::model::phone::PhoneNumber;
use crate::model::record::{EventKind, Record};
use crate::system::outbound::Agent;
use crate::twilio::rest::{Rest, RestError};
use crate::util::queue::DropOldest;
use crate::web::ringing::Ringing;

/// Jobs waiting for one target's worker. Events come a few a day; a burst larger than
/// this means the target is down, and the newest news matters most.
pub const QUEUE_CAPACITY: usize = 32;
/// One attempt, connect to last byte. Generous for a slow mobile uplink, short enough
/// that a hanging target costs its queue little.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pauses before the second, third and fourth (last) attempt.
pub const RETRY_DELAYS: [Duration; 3] =
    [Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(15)];
/// The longest `Retry-After` we honour: a door event later than this is stale news, and
/// a target must not park its worker for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// Bytes of an error answer kept for the log line (targets explain their 4xx there).
const ERROR_BODY_CHARS: usize = 200;
/// An SMS of more than two segments costs more and says nothing more.
const SMS_MAX_CHARS: usize = 300;

/// Where a notification goes.
pub enum Target {
    Webhook { url: Secret },
    Sms { to: PhoneNumber, from: PhoneNumber, twilio: Arc<Rest> },
    Ntfy(NtfyConfig),
}

impl Target {
    /// For log lines: no secret, no path.
    fn describe(&self) -> String {
        match self {
            Target::Webhook { url } => format!("webhook {}", url_origin(url.expose())),
            Target::Sms { to, .. } => format!("SMS to {to}"),
            Target::Ntfy(n) => format!("ntfy {}", url_origin(&n.url)),
        }
    }
}

/// Why one attempt failed: the worker only needs to know whether to try again, and
/// when the target asked for a particular pause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Transient(String, Option<Duration>),
    Permanent(String),
}

/// One target's jobs.
struct Queue {
    target: Target,
    jobs: DropOldest<Record>,
}

impl Queue {
    fn push(&self, record: Record) {
        if let Some(old) = self.jobs.push(record) {
            let (what, target) = (old.event.name(), self.target.describe());
            log::warn!("notification queue full ({QUEUE_CAPACITY}): dropped the oldest, {what} for {target}");
        }
    }
}

pub struct Notifier {
    events: Vec<EventKind>,
    queues: Vec<Arc<Queue>>,
}

impl Notifier {
    /// Starts one worker per target when the config asks for any notification at all;
    /// `ringing` has the links of the calls that ring.
    pub fn start(config: &Config, ringing: Arc<Ringing>) -> io::Result<Option<Arc<Notifier>>> {
        if !config.notify.is_active() {
            return Ok(None);
        }
        let mut targets: Vec<_> =
            config.notify.webhook_url.iter().map(|url| Target::Webhook { url: url.clone() }).collect();
        if !config.notify.sms_to.is_empty() {
            // The config refuses sms_to without these (`config/mod.rs`).
            let twilio = Arc::new(Rest::new(&config.twilio, ATTEMPT_TIMEOUT).map_err(io::Error::other)?);
            let from =
                config.twilio.sms_from.clone().ok_or_else(|| io::Error::other("set twilio.sms_from"))?;
            for to in &config.notify.sms_to {
                targets.push(Target::Sms { to: to.clone(), from: from.clone(), twilio: twilio.clone() });
            }
        }
        targets.extend(config.notify.ntfy.clone().map(Target::Ntfy));
        let mut queues = Vec::new();
        for (i, target) in targets.into_iter().enumerate() {
            let queue = Arc::new(Queue { target, jobs: DropOldest::new(QUEUE_CAPACITY) });
            let (worker_queue, links) = (queue.clone(), ringing.clone());
            thread::Builder::new()
                .name(format!("notify-{i}"))
                .spawn(move || worker(&worker_queue, &links))?;
            queues.push(queue);
        }
        let names: Vec<_> = config.notify.events.iter().map(|e| e.name()).collect();
        let to: Vec<_> = queues.iter().map(|q| q.target.describe()).collect();
        log::info!("notifying {} of {}", to.join(", "), names.join(", "));
        Ok(Some(Arc::new(Notifier { events: config.notify.events.clone(), queues })))
    }

    /// Queues the record for every target that wants its event. Never blocks.
    pub fn submit(&self, record: &Record) {
        let chosen = self.events.contains(&record.event);
        for queue in &self.queues {
            // ntfy gets every ring, whatever the chosen events.
            let rings = matches!(queue.target, Target::Ntfy(_)) && record.event == EventKind::CallForwarded;
            if chosen || rings {
                queue.push(record.clone());
            }
        }
    }
}

fn worker(queue: &Queue, ringing: &Ringing) {
    let agent = Agent::https(ATTEMPT_TIMEOUT);
    loop {
        let record = queue.jobs.pop();
        let what = format!("{} for {}", record.event.name(), queue.target.describe());
        // Looked up when sent: a call that no longer rings gets no link.
        let link = record.call_sid.as_deref().filter(|_| record.event == EventKind::CallForwarded);
        let link = link.and_then(|sid| ringing.link(sid));
        match deliver(|| send(&agent, &queue.target, &record, link.as_deref()), thread::sleep) {
            Ok(1) => log::info!("notified: {what}"),
            Ok(n) => log::info!("notified: {what} (attempt {n})"),
            Err((n, why)) => log::error!("notification failed: {what}, after {n} attempt(s): {why}"),
        }
    }
}

/// Tries `attempt` until it succeeds, fails permanently, or the retries run out,
/// sleeping [`RETRY_DELAYS`] in between, or what the target asked for. Returns the
/// number of attempts made.
pub fn deliver(
    mut attempt: impl FnMut() -> Result<(), Failure>,
    mut sleep: impl FnMut(Duration),
) -> Result<u32, (u32, String)> {
    let mut n = 0;
    loop {
        n += 1;
        match attempt() {
            Ok(()) => return Ok(n),
            Err(Failure::Permanent(why)) => return Err((n, why)),
            Err(Failure::Transient(why, asked)) => match RETRY_DELAYS.get(n as usize - 1) {
                Some(pause) => {
                    let pause = asked.unwrap_or(*pause);
                    log::debug!("notification attempt {n} failed ({why}); retrying in {pause:?}");
                    sleep(pause)
                }
                None => return Err((n, why)),
            },
        }
    }
}

fn send(agent: &Agent, target: &Target, record: &Record, link: Option<&str>) -> Result<(), Failure> {
    match target {
        Target::Webhook { url } => {
            let mut body = serde_json::to_string(record).map_err(|e| Failure::Permanent(e.to_string()))?;
            if let Some(link) = link {
                // The record's own fields, then the link: spliced in as text, so the record
                // is serialized the one way the history writes it.
                body.pop();
                body.push_str(&format!(",\"let_in_url\":{}}}", serde_json::Value::from(link)));
            }
            post_json(agent, url.expose(), None, body)
        }
        Target::Sms { to, from, twilio } => {
            let text: String = format!("Intercom: {}", record.message).chars().take(SMS_MAX_CHARS).collect();
            twilio.send_sms(from, to, &text).map_err(from_rest)
        }
        // ntfy's JSON publish: to the server's root, the topic in the body.
        Target::Ntfy(n) => {
            let rang = record.event == EventKind::CallForwarded;
            let body = serde_json::json!({"topic": n.topic, "message": record.message, "tags": ["door"],
                "title": if rang { "Someone is at the door" } else { "Intercom" },
                "actions": link.map(|url| serde_json::json!([{"action": "http", "label": "Let them in", "url": url, "method": "POST", "clear": true}]))});
            let bearer = n.token.as_ref().map(|t| format!("Bearer {}", t.expose()));
            post_json(agent, &n.url, bearer.as_deref(), body.to_string())
        }
    }
}

/// POSTs `body` as JSON, with `Authorization: authorization` if given.
fn post_json(agent: &Agent, url: &str, authorization: Option<&str>, body: String) -> Result<(), Failure> {
    let headers: Vec<_> = authorization.map(|a| ("Authorization", a)).into_iter().collect();
    let sent = agent.send("POST", url, &headers, Some(("application/json", body.as_bytes())));
    let answer = sent.map_err(|e| from_rest(crate::twilio::rest::network_error(e)))?;
    // Only a failure's is shown (`classify_status` ignores it for success).
    let detail = crate::util::loggable(&answer.text().chars().take(ERROR_BODY_CHARS).collect::<String>());
    classify_status(answer.status, &detail, answer.header("retry-after"), Timestamp::now())
}

fn from_rest(e: RestError) -> Failure {
    match e {
        RestError::Status { status, detail, retry_after } => {
            classify_status(status, &detail, retry_after.as_deref(), Timestamp::now())
                .err()
                .unwrap_or_else(|| Failure::Permanent(format!("HTTP {status}")))
        }
        RestError::Network { why, permanent: false } => Failure::Transient(why, None),
        e => Failure::Permanent(e.to_string()),
    }
}

/// A status as success, a final failure, or one worth another try after the pause a
/// 429 or 503 asks for in `Retry-After` (seconds or an HTTP date, at most
/// [`MAX_RETRY_AFTER`]).
pub fn classify_status(
    status: u16,
    detail: &str,
    retry_after: Option<&str>,
    now: Timestamp,
) -> Result<(), Failure> {
    let why = if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
    let asked = || {
        let wait = retry_after.and_then(|v| crate::twilio::retry_after::parse(v, now))?;
        Some(wait.min(MAX_RETRY_AFTER))
    };
    match status {
        200..=299 => Ok(()),
        429 | 503 => Err(Failure::Transient(why, asked())),
        500..=599 => Err(Failure::Transient(why, None)),
        _ => Err(Failure::Permanent(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn run(script: &[Result<(), Failure>]) -> (Result<u32, (u32, String)>, Vec<Duration>) {
        let mut script: VecDeque<_> = script.iter().cloned().collect();
        let mut slept = Vec::new();
        let result = deliver(|| script.pop_front().expect("more attempts than scripted"), |d| slept.push(d));
        (result, slept)
    }

    fn t() -> Result<(), Failure> {
        Err(Failure::Transient("503".into(), None))
    }

    #[test]
    fn transient_failures_are_retried_with_growing_pauses() {
        assert_eq!(run(&[Ok(())]), (Ok(1), vec![]));
        assert_eq!(run(&[t(), t(), Ok(())]), (Ok(3), RETRY_DELAYS[..2].to_vec()));
        assert_eq!(run(&[t(), t(), t(), t()]), (Err((4, "503".into())), RETRY_DELAYS.to_vec()));
    }

    #[test]
    fn a_pause_the_target_asks_for_replaces_ours() {
        let asked = |s| Err(Failure::Transient("429".into(), Some(Duration::from_secs(s))));
        assert_eq!(
            run(&[asked(30), t(), asked(0), Ok(())]),
            (Ok(4), vec![Duration::from_secs(30), RETRY_DELAYS[1], Duration::ZERO])
        );
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let p = Err(Failure::Permanent("400".into()));
        assert_eq!(run(&[p]), (Err((1, "400".into())), vec![]));
    }

    #[test]
    fn statuses_are_classified() {
        let now = Timestamp::now();
        let c = |s, d| classify_status(s, d, None, now);
        assert_eq!(c(201, ""), Ok(()));
        for s in [429, 500, 502, 503, 504] {
            assert!(matches!(c(s, ""), Err(Failure::Transient(_, None))), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410] {
            assert!(matches!(c(s, ""), Err(Failure::Permanent(_))), "{s}");
        }
        assert_eq!(c(400, "bad To"), Err(Failure::Permanent("HTTP 400: bad To".into())));
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only_and_capped() {
        let now: Timestamp = "2026-11-27T10:00:00Z".parse().unwrap();
        let wait = |s, v| match classify_status(s, "", Some(v), now) {
            Err(Failure::Transient(_, w)) => w,
            other => panic!("{other:?}"),
        };
        assert_eq!(wait(429, "30"), Some(Duration::from_secs(30)));
        assert_eq!(wait(503, "Fri, 27 Nov 2026 10:00:45 GMT"), Some(Duration::from_secs(45)));
        assert_eq!(wait(429, "86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(wait(429, "Fri, 27 Nov 2026 09:00:00 GMT"), Some(Duration::ZERO), "a past date: now");
        assert_eq!(wait(429, "soon"), None, "unreadable: our own pause");
        assert_eq!(wait(500, "30"), None, "only 429 and 503 say when");
    }

    #[test]
    fn the_readmes_ntfy_url_is_accepted() {
        let url = "https://ntfy.sh/your-secret-topic?tpl=1&t=Front%20door&m={{.message}}";
        let text = format!(r#"{{"notify": {{"webhook_url": "{url}"}}}}"#);
        let c = crate::config::parse(&text, |_| None).unwrap();
        assert_eq!(c.notify.webhook_url.unwrap().expose(), url);
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let url = Secret::new("http://127.0.0.1:9".into());
        let q = Queue { target: Target::Webhook { url }, jobs: DropOldest::new(QUEUE_CAPACITY) };
        for n in 0..QUEUE_CAPACITY + 3 {
            q.push(Record::new(Timestamp::UNIX_EPOCH, EventKind::WindowOpened, n.to_string()));
        }
        let left: Vec<_> =
            std::iter::from_fn(|| q.jobs.pop_within(Duration::ZERO)).map(|r| r.message).collect();
        assert_eq!((left.len(), left[0].as_str()), (QUEUE_CAPACITY, "3"));
    }
}
