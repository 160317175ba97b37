//! `intercom init`: the first setup. Asks for what it needs in the order a person has it
//! (Twilio account SID, Auth Token, optional API key, the Twilio number, your phones, the
//! public URL, the number the intercom calls from), checks each answer on the spot with
//! the config's own value checks, and writes the config (0644, no secrets) and the
//! secrets file `intercom.env` beside it (0600). The intercom's number can be learned:
//! the running server rejects and records a call from an unknown number, and init offers
//! the newest such caller. With flags instead of answers it asks nothing.

use std::error::Error;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use lexopt::prelude::*;

use crate::cli::client::{Client, CLIENT_TIMEOUT};
use crate::cli::commands::{command, page_address};
use crate::cli::files::env_file;
use crate::cli::init_ask::{
    ask, ask_all, check_account_sid, check_api_key_sid, check_phone, check_phones, check_secret, check_url,
    plain_http, yes_no, Answers,
};
use crate::cli::reader::{Args, UsageError};
use crate::config::{self, ENV_TWILIO_API_KEY_SECRET, ENV_TWILIO_AUTH_TOKEN};
use crate::model::api::EventsBody;
use crate::model::phone::PhoneNumber;
use crate::model::record::{EventKind, Record};
use crate::store::storage;

/// The config a new install starts from: the shipped template's keys that init does not ask.
const TEMPLATE: &str = include_str!("../../configs/production.json");
/// How long "ring the intercom now" waits by default: time to walk to the door and back.
const DEFAULT_LEARN_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the history is read while waiting for the call.
const LEARN_POLL: Duration = Duration::from_secs(1);
/// History records read per poll: the call is the newest, but other records may follow it.
const LEARN_EVENTS: usize = 50;

/// Answers given as flags, each checked as it was read; `None` is asked (interactive)
/// or an error (with flags).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitArgs {
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub api_key_sid: Option<String>,
    pub api_key_secret: Option<String>,
    pub twilio_number: Option<PhoneNumber>,
    pub forward_to: Option<Vec<PhoneNumber>>,
    pub public_url: Option<String>,
    pub intercom_number: Option<PhoneNumber>,
    /// Learn the intercom's number from the next rejected call.
    pub learn: bool,
    pub learn_timeout: Option<Duration>,
    /// Replace a config that is not the untouched template.
    pub force: bool,
}

/// `init`'s flags, each answer checked as it is read.
pub fn parse(a: &mut Args) -> Result<InitArgs, UsageError> {
    let mut i = InitArgs::default();
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("account-sid") => i.account_sid = Some(a.value(check_account_sid)?),
            Long("auth-token") => i.auth_token = Some(a.value(check_secret)?),
            Long("api-key-sid") => i.api_key_sid = Some(a.value(check_api_key_sid)?),
            Long("api-key-secret") => i.api_key_secret = Some(a.value(check_secret)?),
            Long("twilio-number") => i.twilio_number = Some(a.value(check_phone)?),
            Long("forward-to") => i.forward_to = Some(a.value(check_phones)?),
            Long("public-url") => i.public_url = Some(a.value(check_url)?),
            Long("intercom-number") => i.intercom_number = Some(a.value(check_phone)?),
            Long("learn-intercom") => i.learn = true,
            Long("learn-timeout") => i.learn_timeout = Some(a.value(config::parse_duration)?),
            Long("force") => i.force = true,
            arg => return Err(a.unexpected(arg)),
        }
    }
    Ok(i)
}

/// Runs `intercom init`; the config goes to `path`, the secrets beside it.
pub fn run(path: &Path, args: InitArgs) -> Result<(), Box<dyn Error>> {
    // Only `--learn-intercom` (and its timeout), on a config that is otherwise done: the
    // number, nothing else.
    let rest = InitArgs { learn: false, learn_timeout: None, force: false, ..args.clone() };
    if args.learn && rest == InitArgs::default() {
        return learn(path, args.learn_timeout, false).map(|()| next_steps(path, false));
    }
    let existing = std::fs::read_to_string(path).ok();
    if existing.as_deref().is_some_and(|text| !args.force && !is_untouched_template(text)) {
        let (force, check) = (command(path, "init --force"), command(path, "check-config"));
        return Err(format!("{} exists and is not the untouched template: run `{force}` to replace it, or edit it (see `{check}`)", path.display()).into());
    }
    // No answer given as a flag: each is asked.
    let interactive = args == InitArgs { force: args.force, ..InitArgs::default() };
    let answers = if interactive { ask_all()? } else { from_flags(args.clone())? };
    if let Some(warning) = plain_http(&answers.public_url).filter(|_| !interactive) {
        eprintln!("intercom: {warning}");
    }
    // The keys init does not ask come from the existing config, unless that is the
    // template or not even a JSON object (a broken file replaced with --force).
    let keeps = |t: &&str| {
        !is_untouched_template(t)
            && serde_json::from_slice::<Value>(t.as_bytes()).is_ok_and(|v| v.is_object())
    };
    let base = existing.as_deref().filter(keeps).unwrap_or(TEMPLATE);
    write_files(path, base, &answers)?;
    println!("wrote {} (0644) and {} (0600)", path.display(), env_file(path).display());
    if answers.intercom.is_none() && (args.learn || interactive) {
        learn(path, args.learn_timeout, interactive)?;
    } else if answers.intercom.is_none() {
        let learn = command(path, "init --learn-intercom");
        println!("intercom_number is not set: every call is rejected until it is (`{learn}` learns it)");
    }
    next_steps(path, true);
    Ok(())
}

/// What to do next, each command with this config; and where the phone finds the page.
fn next_steps(path: &Path, twilio: bool) {
    let sudo = |words: &str| format!("`sudo {}`", command(path, words));
    let setup = if twilio { format!("{}, ", sudo("twilio-setup")) } else { String::new() };
    println!("next: `sudo systemctl restart intercom`, {setup}then {}", sudo("doctor"));
    if let Ok(c) = config::load(path) {
        let pair = sudo("pair \"Anna's phone\"");
        println!("then pair your phone with {pair}: it opens the page at {}/", page_address(&c));
    }
}

/// Learns the intercom's number and sets `intercom_number` in the config, nothing else.
fn learn(path: &Path, timeout: Option<Duration>, interactive: bool) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("cannot read {} ({e}): run `{}` first", path.display(), command(path, "init"))
    })?;
    let mut c: Value =
        serde_json::from_slice(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    let keys = c.as_object_mut().ok_or("the config is not a JSON object")?;
    let caller = learn_intercom(path, timeout.unwrap_or(DEFAULT_LEARN_TIMEOUT), interactive)?;
    keys.insert("intercom_number".into(), json!(caller.as_str()));
    write_file(path, &(serde_json::to_string_pretty(&c)? + "\n"), 0o644)?;
    println!("intercom_number is {caller}: wrote {}", path.display());
    Ok(())
}

fn from_flags(a: InitArgs) -> Result<Answers, Box<dyn Error>> {
    fn need<T>(v: Option<T>, flag: &str) -> Result<T, String> {
        v.ok_or_else(|| format!("init with flags needs {flag} (or run `intercom init` alone to be asked)"))
    }
    let api_key = match (a.api_key_sid, a.api_key_secret) {
        (None, None) => None,
        (Some(sid), Some(secret)) => Some((sid, secret)),
        _ => return Err("--api-key-sid and --api-key-secret go together".into()),
    };
    Ok(Answers {
        account_sid: need(a.account_sid, "--account-sid")?,
        auth_token: need(a.auth_token, "--auth-token")?,
        api_key,
        twilio_number: need(a.twilio_number, "--twilio-number")?,
        forward_to: need(a.forward_to, "--forward-to")?,
        public_url: need(a.public_url, "--public-url")?,
        intercom: a.intercom_number,
    })
}

/// Whether a config text still holds the shipped template's placeholders (or is empty).
fn is_untouched_template(text: &str) -> bool {
    text.trim().is_empty()
        || config::parse(text, |_| None).is_ok_and(|c| !config::unfilled_placeholders(&c).is_empty())
}

/// The config: `base` with the answers in; secrets are taken out of it and go to the
/// env file, merged with what that file already holds.
fn write_files(path: &Path, base: &str, a: &Answers) -> Result<(), Box<dyn Error>> {
    let mut c: Value =
        serde_json::from_slice(base.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    let obj = c.as_object_mut().ok_or("the config is not a JSON object")?;
    match &a.intercom {
        Some(n) => obj.insert("intercom_number".into(), json!(n.as_str())),
        None => obj.remove("intercom_number"),
    };
    obj.insert("forward_to".into(), json!(a.forward_to.iter().map(PhoneNumber::as_str).collect::<Vec<_>>()));
    section(obj, "webhook").insert("public_url".into(), json!(a.public_url));
    let twilio = section(obj, "twilio");
    twilio.insert("account_sid".into(), json!(a.account_sid));
    twilio.insert("number".into(), json!(a.twilio_number.as_str()));
    twilio.remove("auth_token");
    twilio.remove("api_key_secret");
    match &a.api_key {
        Some((sid, _)) => twilio.insert("api_key_sid".into(), json!(sid)),
        None => twilio.remove("api_key_sid"),
    };
    let text = serde_json::to_string_pretty(&c)? + "\n";
    // What is written must load, with the secrets, and hold no placeholder.
    let secrets = [
        (ENV_TWILIO_AUTH_TOKEN, Some(a.auth_token.clone())),
        (ENV_TWILIO_API_KEY_SECRET, a.api_key.clone().map(|k| k.1)),
    ];
    let env = |name: &str| secrets.iter().find(|(k, _)| *k == name).and_then(|(_, v)| v.clone());
    let checked = config::parse(&text, env).map_err(|e| format!("the new config would not load: {e}"))?;
    if let Some(e) = config::unfilled_placeholders(&checked).into_iter().next() {
        return Err(format!("the new config still holds a placeholder: {e}").into());
    }
    let env_file = env_file(path);
    let old = std::fs::read_to_string(&env_file).unwrap_or_default();
    // Keyed as systemd reads the file (`KEY = value` too), so no old value survives.
    let ours = |key: &str| secrets.iter().any(|(name, _)| key.trim() == *name);
    let kept = old.lines().filter(|l| !l.split_once('=').is_some_and(|(k, _)| ours(k)));
    let mut lines: Vec<String> = kept.map(str::to_string).collect();
    lines.extend(secrets.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))));
    write_file(&env_file, &(lines.join("\n") + "\n"), 0o600)?;
    write_file(path, &text, 0o644)
}

/// A section of the config (`twilio`), made an object if it is not one.
fn section<'a>(config: &'a mut Map<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    let v = config.entry(name).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("made an object")
}

/// Writes `path` whole (atomically), with `mode` whatever the file had before, and the
/// directory it goes in if that is missing.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), Box<dyn Error>> {
    let dir = storage::parent(path);
    std::fs::create_dir_all(dir).map_err(|e| storage::context(e, "create", dir))?;
    let name = path.file_name().ok_or("the path has no file name")?.to_string_lossy();
    storage::write_atomically(dir, &name, text.as_bytes(), mode)?;
    Ok(std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?)
}

/// Waits for the running server to reject a call, and offers (or, with flags, takes) its
/// caller ID. The server may not be running yet: it is waited for too.
fn learn_intercom(path: &Path, timeout: Duration, interactive: bool) -> Result<PhoneNumber, Box<dyn Error>> {
    let c = config::load_with_env_file(path)?;
    println!("In another terminal, so that the call reaches this server: `sudo systemctl restart intercom`");
    let setup = command(path, "twilio-setup");
    println!("(it reads the new config), and once `sudo {setup}` (Twilio then sends calls here).");
    let deadline = Instant::now() + timeout;
    let mut seen: Option<Vec<Record>> = None;
    let mut said = false;
    let events = format!("/api/events?limit={LEARN_EVENTS}");
    loop {
        if let Ok(EventsBody { events }) = Client::new(&c, CLIENT_TIMEOUT).and_then(|api| api.get(&events)) {
            match &seen {
                None => {
                    seen = Some(events);
                    println!("Waiting for a call: press your button at the building's door now…");
                }
                Some(old) => {
                    let new = events.iter().find(|e| e.event == EventKind::CallRejected && !old.contains(e));
                    if let Some(from) = new.and_then(|e| PhoneNumber::parse(e.from.as_deref()?).ok()) {
                        let question = format!("A call came from {from}. Is this your intercom? [Y/n] ");
                        if !interactive || ask(&question, yes_no)? {
                            return Ok(from);
                        }
                        seen = None;
                    }
                }
            }
        } else if !said {
            println!("Waiting for the server to answer on {}…", page_address(&c));
            said = true;
        }
        if Instant::now() >= deadline {
            let waited = crate::util::time::human(timeout);
            return Err(format!("no call within {waited}: set intercom_number yourself, or run `intercom init --learn-intercom` again").into());
        }
        std::thread::sleep(LEARN_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_counts_as_untouched() {
        assert!(is_untouched_template(TEMPLATE) && is_untouched_template(""));
        assert!(!is_untouched_template(include_str!("../../configs/dev.json")));
    }
}
