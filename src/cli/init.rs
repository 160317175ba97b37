//! `intercom init`: the first setup. Asks for what it needs in the order a person has it
//! (Twilio account SID, Auth Token, optional API key, the Twilio number, your phones, the
//! public URL, the number the intercom calls from), checks each answer on the spot with
//! the config's own value checks, and writes the config (0644, no secrets) and the
//! secrets file `intercom.env` beside it (0600). The intercom's number can be learned:
//! the running server rejects and records a call from an unknown number, and init offers
//! the newest such caller. With flags instead of answers it asks nothing.

use std::error::Error;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::client::Client;
use crate::cli::init_ask::{
    ask, check_account_sid, check_api_key_sid, check_phone, check_phones, check_secret, check_url, yes_no,
    Answers, Prompt,
};
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
                crate::util::time::human(timeout)
            )
            .into());
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
