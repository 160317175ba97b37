//! `intercom init`: the first setup. Asks for what it needs in the order a person has it
//! (Twilio account SID, Auth Token, optional API key, the Twilio number, your phones, the
//! public URL, the number the intercom calls from), checks each answer on the spot with
//! the config's own value checks, and writes the config (0644, no secrets) and the
//! secrets file `intercom.env` beside it (0600). The intercom's number can be learned:
//! the running server rejects and records a call from an unknown number, and init offers
//! the newest such caller. With flags instead of answers it asks nothing.

use std::error::Error;
use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::client::Client;
use crate::config::url::check_public_origin;
use crate::config::{self, ENV_FILE, ENV_TWILIO_API_KEY_SECRET, ENV_TWILIO_AUTH_TOKEN};
use crate::model::phone::PhoneNumber;
use crate::store::storage;

/// The config a new install starts from: the shipped template's keys that init does not ask.
const TEMPLATE: &str = include_str!("../../configs/production.json");
/// How long "ring the intercom now" waits by default: time to walk to the door and back.
const DEFAULT_LEARN_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the history is read while waiting for the call.
const LEARN_POLL: Duration = Duration::from_secs(1);
/// History records read per poll: the call is the newest, but other records may follow it.
const LEARN_EVENTS: usize = 50;

/// Answers given as flags; `None` is asked (interactive) or an error (with flags).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InitArgs {
    pub account_sid: Option<String>,
    pub auth_token: Option<String>,
    pub api_key_sid: Option<String>,
    pub api_key_secret: Option<String>,
    pub twilio_number: Option<String>,
    pub forward_to: Option<String>,
    pub public_url: Option<String>,
    pub intercom_number: Option<String>,
    /// Learn the intercom's number from the next rejected call.
    pub learn: bool,
    pub learn_timeout: Option<String>,
    /// Replace a config that is not the untouched template.
    pub force: bool,
}

impl InitArgs {
    /// Flags were given: nothing is asked.
    fn non_interactive(&self) -> bool {
        *self != InitArgs { force: self.force, ..InitArgs::default() }
    }

    /// Only `--learn-intercom` (and its timeout): the rest of the config stays as it is.
    fn learn_only(&self) -> bool {
        let rest = InitArgs { learn: false, learn_timeout: None, force: false, ..self.clone() };
        self.learn && rest == InitArgs::default()
    }

    fn learn_timeout(&self) -> Result<Duration, String> {
        self.learn_timeout.as_deref().map_or(Ok(DEFAULT_LEARN_TIMEOUT), config::parse_duration)
    }
}

/// The answers, each checked.
struct Answers {
    account_sid: String,
    auth_token: String,
    api_key: Option<(String, String)>,
    twilio_number: PhoneNumber,
    forward_to: Vec<PhoneNumber>,
    public_url: String,
}

pub fn check_account_sid(s: &str) -> Result<String, String> {
    check_sid(s, "AC", "an Account SID: AC and 32 letters or digits, from the Twilio console's Account info")
}

pub fn check_api_key_sid(s: &str) -> Result<String, String> {
    check_sid(s, "SK", "an API key SID: SK and 32 letters or digits")
}

fn check_sid(s: &str, prefix: &str, what: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = s.len() == 34 && s.starts_with(prefix) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok && !s.contains("xxxx") {
        Ok(s.to_string())
    } else {
        Err(format!("expected {what}"))
    }
}

/// Twilio's Auth Tokens and API key secrets are 32 letters and digits.
pub fn check_secret(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(s.to_string())
    } else {
        Err("expected 32 letters and digits, as the Twilio console shows it".into())
    }
}

pub fn check_phone(s: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(s).map_err(|m| format!("{m}, like +15552223333"))
}

pub fn check_phones(s: &str) -> Result<Vec<PhoneNumber>, String> {
    let list: Vec<_> = s.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if list.is_empty() {
        return Err("expected at least one number, like +15552223333 (several: comma-separated)".into());
    }
    list.into_iter().map(check_phone).collect()
}

pub fn check_url(s: &str) -> Result<String, String> {
    check_public_origin(s.trim()).map_err(|m| format!("the public URL {m}"))
}

/// Runs `intercom init`; the config goes to `path`, the secrets beside it.
pub fn run(path: &Path, args: InitArgs) -> Result<(), Box<dyn Error>> {
    if args.learn_only() {
        return learn_only(path, &args);
    }
    let existing = std::fs::read_to_string(path).ok();
    if let Some(text) = &existing {
        if !args.force && !is_untouched_template(text) {
            return Err(format!(
                "{} exists and is not the untouched template: run `intercom init --force` to replace it, or edit it (see `intercom check-config`)",
                path.display()
            )
            .into());
        }
    }
    let mut prompt = Prompt::stdin();
    let interactive = !args.non_interactive();
    let answers = if interactive { ask(&mut prompt)? } else { from_flags(&args)? };
    let mut intercom = match &args.intercom_number {
        Some(n) => Some(check_phone(n)?),
        None => None,
    };
    if intercom.is_none() && interactive {
        let typed = prompt.ask(
            "The number your intercom calls from (+1…), or Enter to learn it by ringing: ",
            |s| if s.trim().is_empty() { Ok(None) } else { check_phone(s).map(Some) },
        )?;
        intercom = typed;
    }
    // The keys init does not ask come from the existing config, unless that is the
    // template or not even a JSON object (a broken file replaced with --force).
    let keeps =
        |t: &&str| !is_untouched_template(t) && serde_json::from_str::<Value>(t).is_ok_and(|v| v.is_object());
    let base = existing.as_deref().filter(keeps).unwrap_or(TEMPLATE);
    write_files(path, base, &answers, intercom.as_ref())?;
    println!("wrote {} (0644) and {} (0600)", path.display(), env_path(path).display());
    let learn = intercom.is_none() && (args.learn || interactive);
    if learn {
        let caller = learn_intercom(path, args.learn_timeout()?, interactive.then_some(&mut prompt))?;
        write_files(path, base, &answers, Some(&caller))?;
        println!("intercom_number is {caller}: wrote {}", path.display());
    } else if intercom.is_none() {
        println!("intercom_number is not set: every call is rejected until it is (`intercom init --learn-intercom` learns it)");
    }
    println!(
        "next: `sudo systemctl restart intercom`, `sudo intercom twilio-setup`, then `sudo intercom doctor`"
    );
    Ok(())
}

/// `intercom init --learn-intercom` on a config that is otherwise done: learns the
/// intercom's number and sets `intercom_number`, nothing else.
fn learn_only(path: &Path, args: &InitArgs) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {} ({e}): run `intercom init` first", path.display()))?;
    let mut c: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let caller = learn_intercom(path, args.learn_timeout()?, None)?;
    c.as_object_mut()
        .ok_or("the config is not a JSON object")?
        .insert("intercom_number".into(), json!(caller.as_str()));
    let mut text = serde_json::to_string_pretty(&c)?;
    text.push('\n');
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or("the config path has no file name")?.to_string_lossy().to_string();
    storage::write_atomically(dir, &name, text.as_bytes(), 0o644)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    println!("intercom_number is {caller}: wrote {}", path.display());
    println!("next: `sudo systemctl restart intercom`, then `sudo intercom doctor`");
    Ok(())
}

fn from_flags(a: &InitArgs) -> Result<Answers, Box<dyn Error>> {
    let need = |v: &Option<String>, flag: &str| {
        v.clone()
            .ok_or_else(|| format!("init with flags needs {flag} (or run `intercom init` alone to be asked)"))
    };
    fn flag_err(flag: &'static str) -> impl Fn(String) -> String {
        move |m| format!("{flag}: {m}")
    }
    let api_key = match (&a.api_key_sid, &a.api_key_secret) {
        (None, None) => None,
        (Some(sid), Some(secret)) => Some((
            check_api_key_sid(sid).map_err(flag_err("--api-key-sid"))?,
            check_secret(secret).map_err(flag_err("--api-key-secret"))?,
        )),
        _ => return Err("--api-key-sid and --api-key-secret go together".into()),
    };
    Ok(Answers {
        account_sid: check_account_sid(&need(&a.account_sid, "--account-sid")?)
            .map_err(flag_err("--account-sid"))?,
        auth_token: check_secret(&need(&a.auth_token, "--auth-token")?).map_err(flag_err("--auth-token"))?,
        api_key,
        twilio_number: check_phone(&need(&a.twilio_number, "--twilio-number")?)
            .map_err(flag_err("--twilio-number"))?,
        forward_to: check_phones(&need(&a.forward_to, "--forward-to")?).map_err(flag_err("--forward-to"))?,
        public_url: check_url(&need(&a.public_url, "--public-url")?).map_err(flag_err("--public-url"))?,
    })
}

fn ask(p: &mut Prompt) -> Result<Answers, Box<dyn Error>> {
    println!("intercom init: a few answers, each checked as you go (Ctrl-C stops; nothing is written until the end).");
    println!("From the Twilio console (console.twilio.com), Account info:");
    let account_sid = p.ask("Account SID (AC…): ", check_account_sid)?;
    let auth_token = p.ask_secret("Auth Token (not shown as you type): ", check_secret)?;
    let api_key_sid = p.ask("API key SID (SK…, optional: Enter to use the Auth Token): ", |s| {
        if s.trim().is_empty() {
            Ok(None)
        } else {
            check_api_key_sid(s).map(Some)
        }
    })?;
    let api_key = match api_key_sid {
        Some(sid) => Some((sid, p.ask_secret("API key secret (not shown): ", check_secret)?)),
        None => None,
    };
    let twilio_number = p.ask("Your Twilio phone number (+1…): ", check_phone)?;
    let forward_to = p.ask("Your phone number(s) to ring (comma-separated): ", check_phones)?;
    let public_url = p.ask("The public URL your tunnel serves (https://host, no path): ", check_url)?;
    Ok(Answers { account_sid, auth_token, api_key, twilio_number, forward_to, public_url })
}

/// Whether a config text still holds the shipped template's placeholders (or is empty).
fn is_untouched_template(text: &str) -> bool {
    text.trim().is_empty()
        || config::parse(text, |_| None).is_ok_and(|c| !config::unfilled_placeholders(&c).is_empty())
}

fn env_path(config: &Path) -> std::path::PathBuf {
    config.parent().unwrap_or(Path::new(".")).join(ENV_FILE)
}

/// The config: `base` with the answers in; secrets are taken out of it and go to the
/// env file, merged with what that file already holds.
fn write_files(
    path: &Path,
    base: &str,
    a: &Answers,
    intercom: Option<&PhoneNumber>,
) -> Result<(), Box<dyn Error>> {
    let mut c: Value = serde_json::from_str(base).map_err(|e| format!("{}: {e}", path.display()))?;
    let obj = c.as_object_mut().ok_or("the config is not a JSON object")?;
    match intercom {
        Some(n) => obj.insert("intercom_number".into(), json!(n.as_str())),
        None => obj.remove("intercom_number"),
    };
    obj.insert("forward_to".into(), json!(a.forward_to.iter().map(PhoneNumber::as_str).collect::<Vec<_>>()));
    let section = |obj: &mut serde_json::Map<String, Value>, name: &str| {
        let v = obj.entry(name).or_insert_with(|| json!({}));
        if !v.is_object() {
            *v = json!({});
        }
        v.as_object_mut().expect("made an object").clone()
    };
    let mut webhook = section(obj, "webhook");
    webhook.insert("public_url".into(), json!(a.public_url));
    obj.insert("webhook".into(), Value::Object(webhook));
    let mut twilio = section(obj, "twilio");
    twilio.insert("account_sid".into(), json!(a.account_sid));
    twilio.insert("number".into(), json!(a.twilio_number.as_str()));
    twilio.remove("auth_token");
    twilio.remove("api_key_secret");
    match &a.api_key {
        Some((sid, _)) => twilio.insert("api_key_sid".into(), json!(sid)),
        None => twilio.remove("api_key_sid"),
    };
    obj.insert("twilio".into(), Value::Object(twilio));
    let mut text = serde_json::to_string_pretty(&c)?;
    text.push('\n');
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
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| storage::context(e, "create", dir))?;
    let env_file = env_path(path);
    let old = std::fs::read_to_string(&env_file).unwrap_or_default();
    let mut lines: Vec<String> = old
        .lines()
        // Keyed as systemd reads the file (`KEY = value` too), so no old value survives.
        .filter(|l| {
            !l.split_once('=').is_some_and(|(k, _)| secrets.iter().any(|(name, _)| k.trim() == *name))
        })
        .map(str::to_string)
        .collect();
    lines.extend(secrets.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))));
    let env_name = ENV_FILE;
    storage::write_atomically(dir, env_name, (lines.join("\n") + "\n").as_bytes(), 0o600)?;
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))?;
    let name = path.file_name().ok_or("the config path has no file name")?.to_string_lossy().to_string();
    storage::write_atomically(dir, &name, text.as_bytes(), 0o644)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Waits for the running server to reject a call, and offers (or, with flags, takes) its
/// caller ID. The server may not be running yet: it is waited for too.
fn learn_intercom(
    path: &Path,
    timeout: Duration,
    mut prompt: Option<&mut Prompt>,
) -> Result<PhoneNumber, Box<dyn Error>> {
    let c = config::load_with_env_file(path)?;
    println!("In another terminal, so that the call reaches this server: `sudo systemctl restart intercom`");
    println!(
        "(it reads the new config), and once `sudo intercom twilio-setup` (Twilio then sends calls here)."
    );
    let deadline = Instant::now() + timeout;
    let mut seen: Option<Vec<String>> = None;
    let mut said = false;
    loop {
        let list = Client::new(&c)
            .and_then(|client| client.call("GET", &format!("/api/events?limit={LEARN_EVENTS}"), ""));
        if let Ok(v) = list {
            let records = v["events"].as_array().cloned().unwrap_or_default();
            let key = |e: &Value| format!("{}|{}|{}|{}", e["time"], e["event"], e["call_sid"], e["from"]);
            match &seen {
                None => {
                    seen = Some(records.iter().map(key).collect());
                    println!("Waiting for a call: press your button at the building's door now…");
                    let _ = std::io::stdout().flush();
                }
                Some(old) => {
                    let new =
                        records.iter().find(|e| e["event"] == "call_rejected" && !old.contains(&key(e)));
                    if let Some(from) =
                        new.and_then(|e| e["from"].as_str()).and_then(|f| PhoneNumber::parse(f).ok())
                    {
                        let Some(p) = prompt.as_deref_mut() else { return Ok(from) };
                        let yes = p.ask(
                            &format!("A call came from {from}. Is this your intercom? [Y/n] "),
                            yes_no,
                        )?;
                        if yes {
                            return Ok(from);
                        }
                        seen = None;
                    }
                }
            }
        } else if !said {
            println!("Waiting for the server to answer on {}…", c.control.listen);
            said = true;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no call within {}: set intercom_number yourself, or run `intercom init --learn-intercom` again",
                humantime::format_duration(timeout)
            )
            .into());
        }
        std::thread::sleep(LEARN_POLL);
    }
}

fn yes_no(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "y" | "yes" => Ok(true),
        "n" | "no" => Ok(false),
        _ => Err("answer y or n".into()),
    }
}

/// Questions on stdout, answers from stdin, one line each; a wrong answer is explained
/// and asked again.
struct Prompt {
    input: Box<dyn BufRead>,
}

impl Prompt {
    fn stdin() -> Prompt {
        Prompt { input: Box::new(std::io::BufReader::new(std::io::stdin())) }
    }

    fn line(&mut self, question: &str) -> Result<String, Box<dyn Error>> {
        print!("{question}");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if self.input.read_line(&mut line)? == 0 {
            return Err("no answer (input ended)".into());
        }
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }

    fn ask<T>(
        &mut self,
        question: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Box<dyn Error>> {
        loop {
            match check(&self.line(question)?) {
                Ok(v) => return Ok(v),
                Err(why) => println!("  {why}; try again."),
            }
        }
    }

    /// Like `ask`, with the terminal's echo off while typing (where `stty` works).
    fn ask_secret<T>(
        &mut self,
        question: &str,
        check: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, Box<dyn Error>> {
        let stty = |arg: &str| {
            Command::new("stty")
                .arg(arg)
                .stdin(Stdio::inherit())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let hidden = stty("-echo");
        let answer = self.ask(question, |s| {
            if hidden {
                println!();
            }
            check(s)
        });
        if hidden {
            stty("echo");
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_as_typed() {
        assert!(check_account_sid("AC0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_account_sid("ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_err());
        assert!(check_account_sid("SK0123456789abcdef0123456789abcdef").is_err());
        assert!(check_api_key_sid(" SK0123456789abcdef0123456789abcdef ").is_ok());
        assert!(check_secret("0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_secret("short").is_err());
        assert_eq!(check_phones("+1 555 222 3333, +447700900123").unwrap().len(), 2);
        assert!(check_phones(" , ").is_err());
        assert!(check_phone("5552223333").unwrap_err().contains("like +15552223333"));
        assert!(check_url("https://door.example.net/voice").unwrap_err().ends_with("remove /voice"));
        assert_eq!(check_url("https://door.example.net/").unwrap(), "https://door.example.net");
    }

    #[test]
    fn the_template_counts_as_untouched() {
        assert!(is_untouched_template(TEMPLATE) && is_untouched_template(""));
        assert!(!is_untouched_template(include_str!("../../configs/dev.json")));
    }
}
