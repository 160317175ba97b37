//! The forwarded calls that ring the residents' phones now, and letting one in while it
//! rings. The page's banner and `POST /api/let-in` (`control.rs`), a notification's
//! one-time link (served here, on the webhook listener) and Home Assistant's button
//! (handed to the bridge by `daemon/server.rs`) all come to one claim, so "once per call,
//! only while it rings" holds in one place.
//!
//! A call rings from the webhook's forward until its `<Dial action>` comes back, a let-in,
//! or its dial time plus [`RING_MARGIN`], whichever is first. Letting it in asks Twilio to
//! play the entrance's tones on the live call ("update a call in progress"). The call is
//! claimed under the lock and the lock let go for the request, so of two taps exactly one
//! reaches Twilio; a request that fails gives the call back (it still rings, 9 still
//! opens, and it can be tapped again). Memory only: after a restart nothing is known to
//! ring, and the phones ring as they always did.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::config::entrances::Entrance;
use crate::config::Config;
use crate::http::{form, HttpError, Request, Response};
use crate::model::api::RingingBody;
use crate::model::record::{Decision, Record};
use crate::store::history::History;
use crate::twilio::rest::{Rest, RestError};
use crate::twilio::twiml;
use crate::util::time::local;
use crate::util::{constant_time_eq, lock, loggable};

/// Past a dial's own time, how long a call still counts as ringing without Twilio's
/// callback: Twilio gives a webhook request 15 s before it gives up on it.
pub const RING_MARGIN: Duration = Duration::from_secs(15);
/// One request to Twilio's API for a tap, connect to last byte: the tap is answered
/// within 6 s whatever Twilio does, with a second left for the rest.
pub const TWILIO_WAIT: Duration = Duration::from_secs(5);
/// A notification's link works this long at most (and only while its call rings): a
/// link found later, in a notification list or a proxy's log, must open nothing.
pub const LINK_LIFETIME: Duration = Duration::from_secs(3 * 60);
/// A link's secret: 128 random bits.
const LINK_BYTES: usize = 16;
/// Calls kept at once, ringing or ended (for what a late tap is told). A building rings
/// a few times an hour; two entrances ringing at once is already rare.
const MAX_CALLS: usize = 16;
/// How long after it started ringing an ended call is still remembered, to tell a late
/// tap what became of it.
const KEEP_ENDED: Duration = Duration::from_secs(10 * 60);
/// A notification's link, on the webhook listener (`?link=…`): the secret goes in the
/// query, which no log line of ours shows.
pub const LINK_PATH: &str = "/let-in";
/// Who let a call in through a link, for the history.
const BY_LINK: &str = "the notification link";
/// What a tap that changed nothing is told besides why.
const STILL_RINGS: &str = "the call still rings your phones, press 9 to open";
/// The link's page, for a link preview or a browser: the button posts, which lets in.
const BUTTON: &str = r#"<form method="post"><button>Let them in</button></form>"#;

pub struct Ringing {
    calls: Mutex<Vec<Call>>,
    /// Told whenever a call starts or stops ringing (the status's long poll waits on it).
    changed: Condvar,
    /// The REST client, or why there is none (no credentials).
    twilio: Result<Rest, String>,
    /// Where `call_let_in` goes, once the history is loaded.
    history: OnceLock<Arc<History>>,
    /// `public_url` + [`LINK_PATH`] + `?link=`; without a public URL there are no links.
    link_base: Option<String>,
}

struct Call {
    sid: String,
    entrance: Option<String>,
    digits: String,
    /// When it started ringing, whole seconds.
    since: Timestamp,
    started: Instant,
    /// When it stops counting as ringing without Twilio's word.
    until: Instant,
    link: Option<String>,
    state: State,
}

enum State {
    Ringing,
    /// Claimed by a tap whose request to Twilio is under way.
    LettingIn(String),
    /// Let in, or ended: what happened ("already let in by …", "the ringing ended") and when.
    Done(String, Timestamp),
}

impl Call {
    fn rings(&self, now: Instant) -> bool {
        match self.state {
            State::Ringing => now < self.until,
            State::LettingIn(_) => true,
            State::Done(..) => false,
        }
    }
}

/// Which call a tap is for.
enum Pick<'a> {
    /// By `CallSid`, as the status named it.
    Sid(&'a str),
    /// By a notification's link.
    Link(&'a str),
}

impl Ringing {
    pub fn new(config: &Config) -> Ringing {
        Ringing {
            calls: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            twilio: Rest::new(&config.twilio, TWILIO_WAIT),
            history: OnceLock::new(),
            link_base: config.webhook.public_url.as_ref().map(|u| format!("{u}{LINK_PATH}?link=")),
        }
    }

    /// Records each let-in in `history` from now on: before any listener or the bridge
    /// can reach this.
    pub fn attach(&self, history: Arc<History>) {
        let _ = self.history.set(history);
    }

    /// A forward rings `sid`'s residents for `dial` from now (again for the next person
    /// of a sequential order).
    pub fn ring(&self, sid: &str, entrance: &Entrance, dial: Duration) {
        let now = Instant::now();
        let until = now + dial + RING_MARGIN;
        let mut calls = lock(&self.calls);
        settle(&mut calls, now);
        match calls.iter_mut().find(|c| c.sid == sid) {
            // A call let in (or ended) never rings again.
            Some(c) => c.until = if matches!(c.state, State::Ringing) { until } else { c.until },
            None => {
                // Without randomness there is no link; the page and the API still work.
                let link = self.link_base.as_ref().and_then(|_| crate::util::random_hex(LINK_BYTES).ok());
                calls.push(Call {
                    sid: sid.to_string(),
                    entrance: entrance.name.clone(),
                    digits: entrance.unlock_digits.clone(),
                    since: crate::util::time::floor(Timestamp::now()),
                    started: now,
                    until,
                    link,
                    state: State::Ringing,
                });
                if calls.len() > MAX_CALLS {
                    calls.remove(0);
                }
            }
        }
        self.changed.notify_all();
    }

    /// `sid`'s dial ended (its action came back): `answered` by someone, or not at all.
    pub fn ended(&self, sid: &str, answered: bool) {
        let why = if answered { "someone took the call" } else { "the ringing ended" };
        let mut calls = lock(&self.calls);
        if let Some(c) = calls.iter_mut().find(|c| c.sid == sid && matches!(c.state, State::Ringing)) {
            c.state = State::Done(why.into(), Timestamp::now());
        }
        self.changed.notify_all();
    }

    /// The newest call that rings now, as the status shows it.
    pub fn now(&self) -> Option<RingingBody> {
        let calls = lock(&self.calls);
        let c = newest(&calls, Instant::now())?;
        Some(RingingBody { call: c.sid.clone(), entrance: c.entrance.clone(), since: c.since })
    }

    /// Waits, at most `max`, until the call that rings now is no longer `seen` (`""`:
    /// none): Twilio's word, a let-in or a new ring. A call that only runs past its time
    /// shows when the wait runs out.
    pub fn wait_change(&self, seen: &str, max: Duration) {
        let same = |calls: &mut Vec<Call>| newest(calls, Instant::now()).map_or("", |c| &c.sid) == seen;
        let _ = self.changed.wait_timeout_while(lock(&self.calls), max, same);
    }

    /// The one-time link of `sid`'s notification, while it may still let the call in.
    pub fn link(&self, sid: &str) -> Option<String> {
        let now = Instant::now();
        let calls = lock(&self.calls);
        let c = calls.iter().find(|c| c.sid == sid && c.rings(now) && now < c.started + LINK_LIFETIME)?;
        Some(format!("{}{}", self.link_base.as_ref()?, c.link.as_ref()?))
    }

    /// Lets `call` in for `who`, once, while it rings. The error says in words what
    /// happened, and why nothing changed.
    pub fn let_in(&self, call: &str, who: &str) -> Result<(), HttpError> {
        self.claim(Pick::Sid(call), Some(who))
    }

    /// `GET /let-in?link=…` says what the link would do and shows a button (a link
    /// preview that loads it spends nothing); `POST`, as ntfy's button sends, lets in.
    pub fn link_route(&self, req: &Request) -> Response {
        let params = form::parse(req.query.as_bytes()).unwrap_or_default();
        let link = form::single(&params, "link").ok().flatten().unwrap_or("");
        let post = req.method == "POST";
        let (status, text, button) = match self.claim(Pick::Link(link), post.then_some(BY_LINK)) {
            Ok(()) if post => (200, "Let in: the door tones were played to the intercom.".into(), ""),
            Ok(()) => (200, "Someone is at the door.".into(), BUTTON),
            Err(e) => (e.status(), format!("Nothing was opened: {}.", e.message()), ""),
        };
        let html = format!(
            "<!doctype html><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Front door</title><style>body{{font:1.3rem system-ui,sans-serif;margin:2rem}}button{{font-size:1.5rem;padding:1rem 2rem}}</style><p>{}</p>{button}\n",
            twiml::escape(&text)
        );
        let policy =
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
        Response::new(status, "text/html; charset=utf-8", html)
            .with_header("Cache-Control", "no-store")
            .with_header("Content-Security-Policy", policy)
    }

    /// Finds the call and checks that it may be let in; with `who`, claims it and asks
    /// Twilio. No lock is held across the request.
    fn claim(&self, pick: Pick, who: Option<&str>) -> Result<(), HttpError> {
        let still = |why: &str| HttpError::Unavailable(format!("{why}: {STILL_RINGS}"));
        let twilio = self.twilio.as_ref().map_err(|why| still(why))?;
        let (sid, digits, entrance, who) = {
            let mut calls = lock(&self.calls);
            let now = Instant::now();
            settle(&mut calls, now);
            let found = match pick {
                Pick::Sid(sid) => calls.iter_mut().find(|c| c.sid == sid),
                Pick::Link(link) => calls.iter_mut().find(|c| {
                    c.link.as_deref().is_some_and(|l| constant_time_eq(l.as_bytes(), link.as_bytes()))
                }),
            };
            let c = found.ok_or_else(|| match pick {
                Pick::Sid(_) => HttpError::Gone("that call is not ringing".into()),
                Pick::Link(_) => HttpError::Refused(
                    "this link is not valid (or the intercom restarted since it was sent)".into(),
                ),
            })?;
            if matches!(pick, Pick::Link(_)) && now >= c.started + LINK_LIFETIME {
                let minutes = LINK_LIFETIME.as_secs() / 60;
                return Err(HttpError::Gone(format!(
                    "this link has expired: links work for {minutes} minutes"
                )));
            }
            match &c.state {
                State::Ringing => {}
                State::LettingIn(by) => return Err(HttpError::Gone(format!("{by} is letting them in now"))),
                State::Done(what, at) => return Err(HttpError::Gone(format!("{what} at {}", local(*at)))),
            }
            let Some(who) = who else { return Ok(()) };
            c.state = State::LettingIn(who.to_string());
            (c.sid.clone(), c.digits.clone(), c.entrance.clone(), who)
        };
        let tones = twiml::render(&Decision::Unlock { digits }, &Default::default());
        let at = Timestamp::now();
        let (done, answer) = match twilio.update_call(&sid, &tones) {
            Ok(()) => (Some(format!("already let in by {who}")), Ok(())),
            Err(RestError::CallEnded) => {
                let why = "the visitor hung up";
                (Some(why.into()), Err(HttpError::Gone(format!("{why} at {}", local(at)))))
            }
            Err(e) => {
                log::warn!("could not let call {} in: {}", loggable(&sid), twilio.explain(&e));
                let why = match e {
                    RestError::Network { .. } => "could not reach Twilio".into(),
                    e => format!("Twilio refused it ({e})"),
                };
                (None, Err(still(&why)))
            }
        };
        if let Some(c) = lock(&self.calls).iter_mut().find(|c| c.sid == sid) {
            match done {
                Some(what) => c.state = State::Done(what, at),
                // Nothing changed: it rings, and can be tapped again.
                None if matches!(c.state, State::LettingIn(_)) => c.state = State::Ringing,
                None => {}
            }
        }
        self.changed.notify_all();
        if answer.is_ok() {
            log::info!("call {sid} let in while it rang, by {}", loggable(who));
            if let Some(history) = self.history.get() {
                history.record(&Record::let_in(&sid, entrance.as_deref(), who, at));
            }
        }
        answer
    }
}

/// The newest call that rings at `now`.
fn newest(calls: &[Call], now: Instant) -> Option<&Call> {
    calls.iter().rev().find(|c| c.rings(now))
}

/// Ends what rang past its time, and forgets what ended long enough ago.
fn settle(calls: &mut Vec<Call>, now: Instant) {
    for c in calls.iter_mut() {
        if matches!(c.state, State::Ringing) && now >= c.until {
            c.state = State::Done("the ringing ended".into(), c.since + (c.until - c.started));
        }
    }
    calls.retain(|c| c.rings(now) || now < c.started + KEEP_ENDED);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "CA0123456789abcdef0123456789abcdef";

    fn ringing() -> Ringing {
        let config = crate::config::parse(
            r#"{"webhook": {"public_url": "https://door.example"}, "twilio": {"account_sid": "AC1", "auth_token": "t"}}"#,
            |_| None,
        )
        .unwrap();
        Ringing::new(&config)
    }

    fn gate() -> Entrance {
        Entrance {
            name: Some("gate".into()),
            number: crate::model::phone::PhoneNumber::parse("+15558880001").unwrap(),
            unlock_digits: "9".into(),
        }
    }

    #[test]
    fn a_call_rings_until_its_dial_ends() {
        let r = ringing();
        r.ring(SID, &gate(), Duration::from_secs(25));
        let now = r.now().unwrap();
        assert_eq!((now.call.as_str(), now.entrance.as_deref()), (SID, Some("gate")));
        assert_eq!(now.since, crate::util::time::floor(now.since), "whole seconds");
        let link = r.link(SID).unwrap();
        let secret = link.strip_prefix("https://door.example/let-in?link=").unwrap();
        assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{link}");
        r.ended(SID, false);
        assert_eq!((r.now(), r.link(SID)), (None, None));
    }

    #[test]
    fn a_call_past_its_time_no_longer_rings_and_an_old_link_has_expired() {
        let r = ringing();
        r.ring(SID, &gate(), Duration::from_secs(25));
        let link = r.link(SID).unwrap();
        let secret = link.rsplit('=').next().unwrap().to_string();
        {
            let mut calls = lock(&r.calls);
            calls[0].started -= LINK_LIFETIME;
        }
        assert_eq!(r.link(SID), None, "a link older than its lifetime is not handed out");
        let late = r.claim(Pick::Link(&secret), None).unwrap_err();
        assert_eq!(late.status(), 410);
        assert!(late.message().contains("expired"), "{}", late.message());
        lock(&r.calls)[0].until = Instant::now();
        assert_eq!(r.now(), None, "past its dial time and margin");
        let e = r.claim(Pick::Sid(SID), None).unwrap_err();
        assert!(e.status() == 410 && e.message().starts_with("the ringing ended at"), "{}", e.message());
        let started = Instant::now();
        r.wait_change("", Duration::from_millis(50));
        assert!(started.elapsed() >= Duration::from_millis(50), "nothing rings: the wait runs out");
    }
}
