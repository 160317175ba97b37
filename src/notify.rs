//! Notifications of chosen events: an SMS through Twilio's REST API to each of
//! `notify.sms_to`, and a JSON POST to `notify.webhook_url` (ntfy, Home Assistant, …).
//!
//! Nothing here runs on a request thread except [`Notifier::submit`], which only pushes
//! onto a bounded queue and never blocks: when the queue is full the oldest job is
//! dropped with a warning. One worker thread sends, with a timeout per attempt, and
//! retries transient failures (transport errors and timeouts, 429, 5xx) after growing
//! pauses; any other answer is final. A job that finally fails is logged, never retried
//! later: a door event hours late is worse than none.
//!
//! Secrets stay out of logs: the webhook URL is logged as its origin only (its path and
//! query often are the secret), Twilio credentials never.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine;

use crate::config::{Config, Secret};
use crate::phone::PhoneNumber;
use crate::record::{EventKind, Record};
use crate::url::url_origin;

/// Jobs waiting for the worker. Events come a few a day; a burst larger than this means
/// the targets are down, and the newest news matters most.
pub const QUEUE_CAPACITY: usize = 32;
/// One attempt, connect to last byte. Generous for a slow mobile uplink, short enough
/// that a hanging target costs the queue little.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The pauses before the second, third and fourth (last) attempt.
pub const RETRY_DELAYS: [Duration; 3] =
    [Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(15)];
/// Bytes of an error answer kept for the log line (Twilio explains its 4xx there).
const ERROR_BODY_CHARS: usize = 200;
/// An SMS of more than two segments costs more and says nothing more.
const SMS_MAX_CHARS: usize = 300;
const USER_AGENT: &str = concat!("intercom/", env!("CARGO_PKG_VERSION"));

/// Where a notification goes.
#[derive(Debug, Clone)]
pub enum Target {
    Webhook { url: Secret },
    Sms { to: PhoneNumber, twilio: Arc<TwilioAccount> },
}

#[derive(Debug)]
pub struct TwilioAccount {
    pub api_base: String,
    pub account_sid: String,
    pub auth_token: Secret,
    pub from: PhoneNumber,
}

impl Target {
    /// For log lines: no secret, no path.
    fn describe(&self) -> String {
        match self {
            Target::Webhook { url } => format!("webhook {}", url_origin(url.expose())),
            Target::Sms { to, .. } => format!("SMS to {to}"),
        }
    }
}

/// Why one attempt failed: the worker only needs to know whether to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Transient(String),
    Permanent(String),
}

struct Job {
    target: Target,
    record: Record,
}

struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

impl Queue {
    fn push(&self, job: Job) {
        let mut jobs = crate::lock(&self.jobs);
        if jobs.len() >= QUEUE_CAPACITY {
            if let Some(old) = jobs.pop_front() {
                log::warn!(
                    "notification queue full ({QUEUE_CAPACITY}): dropped the oldest, {} for {}",
                    old.record.event.name(),
                    old.target.describe()
                );
            }
        }
        jobs.push_back(job);
        self.ready.notify_one();
    }

    fn pop(&self) -> Job {
        let mut jobs = crate::lock(&self.jobs);
        loop {
            if let Some(job) = jobs.pop_front() {
                return job;
            }
            jobs = self.ready.wait(jobs).unwrap_or_else(|p| p.into_inner());
        }
    }
}

pub struct Notifier {
    queue: Arc<Queue>,
    events: Vec<EventKind>,
    targets: Vec<Target>,
}

impl Notifier {
    /// Starts the worker when the config asks for any notification at all.
    pub fn start(config: &Config) -> io::Result<Option<Arc<Notifier>>> {
        if !config.notify.is_active() {
            return Ok(None);
        }
        let mut targets = Vec::new();
        if let Some(url) = &config.notify.webhook_url {
            targets.push(Target::Webhook { url: url.clone() });
        }
        if !config.notify.sms_to.is_empty() {
            // config.rs refuses sms_to without these.
            let t = &config.twilio;
            let (Some(sid), Some(token), Some(from)) = (&t.account_sid, &t.auth_token, &t.sms_from) else {
                return Err(io::Error::other(
                    "SMS notifications need twilio.account_sid, auth_token and sms_from",
                ));
            };
            let account = Arc::new(TwilioAccount {
                api_base: t.api_base.clone(),
                account_sid: sid.clone(),
                auth_token: token.clone(),
                from: from.clone(),
            });
            for to in &config.notify.sms_to {
                targets.push(Target::Sms { to: to.clone(), twilio: account.clone() });
            }
        }
        let queue = Arc::new(Queue { jobs: Mutex::new(VecDeque::new()), ready: Condvar::new() });
        let worker_queue = queue.clone();
        thread::Builder::new().name("notify".into()).spawn(move || worker(&worker_queue))?;
        let names: Vec<_> = config.notify.events.iter().map(|e| e.name()).collect();
        let to: Vec<_> = targets.iter().map(Target::describe).collect();
        log::info!("notifying {} of {}", to.join(", "), names.join(", "));
        Ok(Some(Arc::new(Notifier { queue, events: config.notify.events.clone(), targets })))
    }

    /// Queues the record for every target if its event is one to notify. Never blocks.
    pub fn submit(&self, record: &Record) {
        if !self.events.contains(&record.event) {
            return;
        }
        for target in &self.targets {
            self.queue.push(Job { target: target.clone(), record: record.clone() });
        }
    }
}

fn worker(queue: &Queue) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(crate::tls::config())
        .timeout_global(Some(ATTEMPT_TIMEOUT))
        .http_status_as_error(false)
        // A redirect would be answered as a final failure rather than followed with our
        // credentials to wherever it points.
        .max_redirects(0)
        .user_agent(USER_AGENT)
        .build()
        .into();
    loop {
        let job = queue.pop();
        let what = format!("{} for {}", job.record.event.name(), job.target.describe());
        match deliver(|| send(&agent, &job), thread::sleep) {
            Ok(1) => log::info!("notified: {what}"),
            Ok(n) => log::info!("notified: {what} (attempt {n})"),
            Err((n, why)) => log::error!("notification failed: {what}, after {n} attempt(s): {why}"),
        }
    }
}

/// Tries `attempt` until it succeeds, fails permanently, or the retries run out,
/// sleeping [`RETRY_DELAYS`] in between. Returns the number of attempts made.
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
            Err(Failure::Transient(why)) => match RETRY_DELAYS.get(n as usize - 1) {
                Some(pause) => {
                    log::debug!("notification attempt {n} failed ({why}); retrying in {pause:?}");
                    sleep(*pause)
                }
                None => return Err((n, why)),
            },
        }
    }
}

fn send(agent: &ureq::Agent, job: &Job) -> Result<(), Failure> {
    let result = match &job.target {
        Target::Webhook { url } => {
            let body = serde_json::to_vec(&job.record).map_err(|e| Failure::Permanent(e.to_string()))?;
            agent.post(url.expose()).header("Content-Type", "application/json").send(&body[..])
        }
        Target::Sms { to, twilio } => {
            let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", twilio.api_base, twilio.account_sid);
            let credentials = format!("{}:{}", twilio.account_sid, twilio.auth_token.expose());
            let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
            let text: String =
                format!("Intercom: {}", job.record.message).chars().take(SMS_MAX_CHARS).collect();
            agent.post(&url).header("Authorization", &auth).send_form([
                ("To", to.as_str()),
                ("From", twilio.from.as_str()),
                ("Body", text.as_str()),
            ])
        }
    };
    match result {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(());
            }
            let detail = resp
                .body_mut()
                .read_to_string()
                .map(|b| crate::loggable(&b.chars().take(ERROR_BODY_CHARS).collect::<String>()))
                .unwrap_or_default();
            classify_status(status, &detail)
        }
        Err(e) => Err(classify_error(&e)),
    }
}

pub fn classify_status(status: u16, detail: &str) -> Result<(), Failure> {
    let why = if detail.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {detail}") };
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(Failure::Transient(why)),
        _ => Err(Failure::Permanent(why)),
    }
}

/// Transport errors are worth another try, except those that can only repeat. The
/// message never holds the URL.
fn classify_error(e: &ureq::Error) -> Failure {
    match e {
        ureq::Error::BadUri(_) => Failure::Permanent("bad URL".into()),
        ureq::Error::RequireHttpsOnly(_) | ureq::Error::TlsRequired | ureq::Error::InvalidProxyUrl => {
            Failure::Permanent(e.to_string())
        }
        ureq::Error::Timeout(_) => Failure::Transient(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
        _ => Failure::Transient(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &[Result<(), Failure>]) -> (Result<u32, (u32, String)>, Vec<Duration>) {
        let mut script: VecDeque<_> = script.iter().cloned().collect();
        let mut slept = Vec::new();
        let result = deliver(|| script.pop_front().expect("more attempts than scripted"), |d| slept.push(d));
        (result, slept)
    }

    fn t() -> Result<(), Failure> {
        Err(Failure::Transient("503".into()))
    }

    #[test]
    fn transient_failures_are_retried_with_growing_pauses() {
        assert_eq!(run(&[Ok(())]), (Ok(1), vec![]));
        assert_eq!(run(&[t(), t(), Ok(())]), (Ok(3), RETRY_DELAYS[..2].to_vec()));
        assert_eq!(run(&[t(), t(), t(), t()]), (Err((4, "503".into())), RETRY_DELAYS.to_vec()));
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let p = Err(Failure::Permanent("400".into()));
        assert_eq!(run(&[p]), (Err((1, "400".into())), vec![]));
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status(201, ""), Ok(()));
        for s in [429, 500, 502, 503, 504] {
            assert!(matches!(classify_status(s, ""), Err(Failure::Transient(_))), "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410] {
            assert!(matches!(classify_status(s, ""), Err(Failure::Permanent(_))), "{s}");
        }
        assert_eq!(classify_status(400, "bad To"), Err(Failure::Permanent("HTTP 400: bad To".into())));
    }

    #[test]
    fn the_readmes_ntfy_url_is_accepted() {
        let url = "https://ntfy.sh/your-secret-topic?tpl=1&t=Front%20door&m={{.message}}";
        let text = format!(r#"{{"notify": {{"webhook_url": "{url}"}}}}"#);
        let c = crate::config::parse(&text, |_| None).unwrap();
        assert_eq!(c.notify.webhook_url.unwrap().expose(), url);
        assert!(ureq::http::Uri::try_from(url).is_ok(), "the HTTP client takes the braces as they are");
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let q = Queue { jobs: Mutex::new(VecDeque::new()), ready: Condvar::new() };
        let url = Secret::new("http://127.0.0.1:9/x".into());
        for n in 0..QUEUE_CAPACITY + 3 {
            let record = Record::new(std::time::UNIX_EPOCH, EventKind::WindowOpened, n.to_string());
            q.push(Job { target: Target::Webhook { url: url.clone() }, record });
        }
        assert_eq!(q.jobs.lock().unwrap().len(), QUEUE_CAPACITY);
        assert_eq!(q.pop().record.message, "3");
    }
}
