//! Recent webhook answers by (route, `CallSid`), so that a repeated request gets the same
//! answer and changes nothing: Twilio retries a webhook (a connection override `rc`, a
//! timeout followed by the fallback URL) and anyone who captured a signed request can
//! send it again. Only the first request of a call is decided, counted and recorded;
//! the rest are answered from here.
//!
//! In memory, bounded in count and age: a convenience for Twilio's retries. What keeps an
//! answered call from spending anything again (a one-shot window, a guest code's use, a
//! wrong code's count) is [`Answered`]: every answered call's `CallSid`, read from the
//! history at start and noted at every answer since. No file of its own: each call's
//! record is on disk before its answer (group commit, `store/history.rs`), so after kill
//! -9 the history knows every call that got an answer, with no second fsync per call.
//!
//! A repeat that arrives while the first is still being decided (a slow disk) waits for
//! its answer, at most [`REPEAT_WAIT`]; then it is told [`Claim::Busy`] and the caller
//! answers without side effects (a forward).

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::util::lock;

/// Calls remembered at once. Only calls from the intercom are remembered (a stranger's
/// reject has no effect to repeat, so strangers cannot push the intercom's calls out);
/// a building's intercom rings a few dozen times a day, so this is weeks of calls, and
/// at about 500 bytes an entry at most half a MiB.
pub const MAX_REMEMBERED: usize = 1024;
/// How long an answer is remembered: longer than Twilio's whole retry sequence (a few
/// retries of at most 15 s each, then the fallback URL) and than any intercom call.
/// Beyond it, [`Answered`] still stops a second use of anything.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60 * 60);
/// How long a repeat waits for the first request's answer: the first is answered within
/// the state and codes locks' waits plus the history's (about 7 s, see `LOCK_WAIT` and
/// `APPEND_WAIT`), and Twilio gives up after 15 s.
pub const REPEAT_WAIT: Duration = Duration::from_secs(8);

/// Answered calls kept in [`Answered`]: more than the history's two files hold (a record
/// is about 200 bytes, so about 2,600 of them), so all it tells at start fits; at a few
/// dozen calls a day, months of calls, and at about 100 bytes each, under half a MiB.
pub const MAX_ANSWERED: usize = 4096;

/// The route a request came to and its `CallSid`.
pub type Key = (&'static str, String);

/// What [`Recent::claim`] found.
pub enum Claim<'a, T> {
    /// The first request with this key: decide it, then [`Ticket::answer`].
    First(Ticket<'a, T>),
    /// A repeat: the answer the first request got.
    Repeat(T),
    /// A repeat whose first request is still undecided after [`REPEAT_WAIT`].
    Busy,
}

enum Slot<T> {
    Pending,
    Answered(T),
}

struct Map<T> {
    entries: HashMap<Key, Slot<T>>,
    /// The same keys in the order they were inserted, with when.
    order: VecDeque<(Instant, Key)>,
}

pub struct Recent<T> {
    map: Mutex<Map<T>>,
    answered: Condvar,
    cap: usize,
    ttl: Duration,
}

/// The right to decide a call. Dropped without an answer (a reject, an error, a panic),
/// the key is forgotten and the next request with it is decided afresh.
pub struct Ticket<'a, T> {
    recent: &'a Recent<T>,
    key: Key,
}

impl<T: Clone> Recent<T> {
    pub fn new(cap: usize, ttl: Duration) -> Recent<T> {
        let map = Map { entries: HashMap::new(), order: VecDeque::new() };
        Recent { map: Mutex::new(map), answered: Condvar::new(), cap, ttl }
    }

    pub fn claim(&self, key: Key, now: Instant) -> Claim<'_, T> {
        let mut map = lock(&self.map);
        self.prune(&mut map, now);
        let pending = |map: &mut Map<T>| matches!(map.entries.get(&key), Some(Slot::Pending));
        let waited = self.answered.wait_timeout_while(map, REPEAT_WAIT, pending);
        let mut map = waited.unwrap_or_else(|p| p.into_inner()).0;
        match map.entries.get(&key) {
            Some(Slot::Answered(t)) => return Claim::Repeat(t.clone()),
            Some(Slot::Pending) => return Claim::Busy,
            // New, or forgotten while we waited (the first was not remembered): decide it.
            None => {}
        }
        map.entries.insert(key.clone(), Slot::Pending);
        map.order.push_back((now, key.clone()));
        self.prune(&mut map, now);
        Claim::First(Ticket { recent: self, key })
    }

    /// Drops what is older than the time to live, and the oldest beyond the cap.
    fn prune(&self, map: &mut Map<T>, now: Instant) {
        let old = |at: &Instant| now.saturating_duration_since(*at) >= self.ttl;
        while map.entries.len() > self.cap || map.order.front().is_some_and(|(at, _)| old(at)) {
            let Some((_, key)) = map.order.pop_front() else { break };
            map.entries.remove(&key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.map).entries.len()
    }
}

/// The calls from the intercom this server has answered, by `CallSid`, oldest out first
/// beyond [`MAX_ANSWERED`]. A request of one of them is answered without effects.
#[derive(Default)]
pub struct Answered {
    /// `false`: only asked for a code so far; its keypad answer (`/voice/code`) is to come.
    calls: HashMap<String, bool>,
    order: VecDeque<String>,
}

impl Answered {
    pub fn note(&mut self, call_sid: &str, decided: bool) {
        if let Some(d) = self.calls.get_mut(call_sid) {
            *d |= decided;
            return;
        }
        self.calls.insert(call_sid.to_string(), decided);
        self.order.push_back(call_sid.to_string());
        if let Some(old) = (self.order.len() > MAX_ANSWERED).then(|| self.order.pop_front()).flatten() {
            self.calls.remove(&old);
        }
    }

    /// Whether a request of this call was answered before: on `/voice` any, on the
    /// keypad's route (`keypad`) one that decided the call.
    pub fn has(&self, call_sid: &str, keypad: bool) -> bool {
        self.calls.get(call_sid).is_some_and(|decided| *decided || !keypad)
    }
}

impl<T> Ticket<'_, T> {
    /// Remembers the answer; the ticket's drop hands it to the repeats that wait for it.
    pub fn answer(self, answer: T) {
        if let Some(slot) = lock(&self.recent.map).entries.get_mut(&self.key) {
            *slot = Slot::Answered(answer);
        }
    }
}

impl<T> Drop for Ticket<'_, T> {
    fn drop(&mut self) {
        let mut map = lock(&self.recent.map);
        if matches!(map.entries.get(&self.key), Some(Slot::Pending)) {
            map.entries.remove(&self.key);
            map.order.retain(|(_, k)| *k != self.key);
        }
        self.recent.answered.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sid: &str) -> Key {
        ("/voice", sid.to_string())
    }

    #[test]
    fn a_repeat_gets_the_first_answer_and_a_forgotten_call_is_decided_again() {
        let r: Recent<u32> = Recent::new(8, Duration::from_secs(60));
        let t0 = Instant::now();
        let Claim::First(t) = r.claim(key("CA1"), t0) else { panic!("first") };
        t.answer(7);
        assert!(matches!(r.claim(key("CA1"), t0), Claim::Repeat(7)));
        assert!(matches!(r.claim(("/voice/code", "CA1".into()), t0), Claim::First(_)), "another route");
        let Claim::First(t) = r.claim(key("CA2"), t0) else { panic!("first") };
        drop(t); // not remembered (a reject, an error)
        assert!(matches!(r.claim(key("CA2"), t0), Claim::First(_)));
        assert!(matches!(r.claim(key("CA1"), t0 + Duration::from_secs(60)), Claim::First(_)), "aged out");
    }

    #[test]
    fn an_answered_call_is_known_until_newer_ones_push_it_out() {
        let mut a = Answered::default();
        a.note("CAasked", false);
        assert!(a.has("CAasked", false) && !a.has("CAasked", true), "its keypad answer is to come");
        a.note("CAasked", true);
        assert!(a.has("CAasked", true));
        a.note("CAasked", false);
        assert!(a.has("CAasked", true), "decided stays decided");
        for n in 0..MAX_ANSWERED {
            a.note(&format!("CA{n}"), true);
        }
        assert!(!a.has("CAasked", false) && a.has("CA0", true));
        assert_eq!((a.calls.len(), a.order.len()), (MAX_ANSWERED, MAX_ANSWERED));
    }

    #[test]
    fn bounded_in_count_oldest_out_first() {
        let r: Recent<u32> = Recent::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for n in 0..10 {
            let Claim::First(t) = r.claim(key(&format!("CA{n}")), t0) else { panic!("{n}") };
            t.answer(n);
        }
        assert_eq!(r.len(), 3);
        assert!(matches!(r.claim(key("CA9"), t0), Claim::Repeat(9)));
        assert!(matches!(r.claim(key("CA0"), t0), Claim::First(_)));
    }

    #[test]
    fn a_repeat_during_the_first_waits_for_its_answer() {
        let r: Recent<u32> = Recent::new(8, Duration::from_secs(60));
        let Claim::First(t) = r.claim(key("CA1"), Instant::now()) else { panic!("first") };
        std::thread::scope(|s| {
            let waiter = s.spawn(|| matches!(r.claim(key("CA1"), Instant::now()), Claim::Repeat(5)));
            std::thread::sleep(Duration::from_millis(50));
            t.answer(5);
            assert!(waiter.join().unwrap());
        });
    }
}
