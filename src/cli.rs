//! The command line: parse arguments by hand (no clap: the binary stays small), then run
//! one command. `open`, `close` and `status` go through the running server's control API,
//! so the server stays the only writer of the state.

use std::error::Error;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::client::{control_token, display_addr, local_address, Client};
use crate::codes_cli::CodeArgs;
use crate::config::{self, Config, Secret};
use crate::state;

pub const USAGE: &str = "\
usage:
  intercom serve        [--config FILE]   run both listeners
  intercom open [DUR]   [--config FILE]   open the window (90m, 2h, 1h30m; default default_window)
  intercom close        [--config FILE]   close the window
  intercom status       [--config FILE]   show whether the window is open
  intercom url          [--config FILE]   print the LAN control URL (it holds the token)
  intercom check-config [--config FILE]   validate, print a summary with secrets masked
  intercom simulate --from NUMBER [--config FILE]   print the TwiML a call would get now
  intercom twilio-setup [--dry-run] [--config FILE]   point the Twilio number at this server
  intercom fallback-twiml [--config FILE]   print the TwiML for the number's fallback (a TwiML Bin)
  intercom doctor       [--config FILE]   check the whole chain, say what to fix
  intercom code add [--label L] [--valid DUR] [--uses N] [--config FILE]
                                          make a guest code (default: 1 day, 1 use); prints it
  intercom code list    [--config FILE]   the active guest codes
  intercom code rm ID   [--config FILE]   delete a guest code
  intercom init         [--config FILE]   guided first setup: asks, checks, writes the config + intercom.env
  intercom init --account-sid AC… --auth-token T --twilio-number N --forward-to N[,N]
                --public-url URL [--api-key-sid SK… --api-key-secret S]
                [--intercom-number N | --learn-intercom [--learn-timeout DUR]] [--force]
                                          the same without questions
  intercom --version | --help

FILE defaults to /etc/intercom/intercom.json.";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Serve,
    Open(Option<String>),
    Close,
    Status,
    Url,
    CheckConfig,
    Simulate { from: String },
    TwilioSetup { dry_run: bool },
    FallbackTwiml,
    Doctor,
    Code(CodeArgs),
    Init(crate::init::InitArgs),
    Version,
    Help,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub config: PathBuf,
}

/// A usage error: the caller prints it with the usage text and exits 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

pub fn parse_args(args: &[String]) -> Result<Args, UsageError> {
    if command_word(args) == Some("init") {
        return parse_init(args);
    }
    let mut config = None;
    let mut from = None;
    let mut dry_run = false;
    let (mut label, mut valid, mut uses) = (None, None, None);
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value_of = |flag: &str| -> Result<String, UsageError> {
            it.next().cloned().ok_or_else(|| UsageError(format!("{flag} needs a value")))
        };
        match arg.as_str() {
            "--help" | "-h" => return Ok(Args { command: Command::Help, config: PathBuf::new() }),
            "--version" | "-V" => return Ok(Args { command: Command::Version, config: PathBuf::new() }),
            "--config" | "-c" => config = Some(value_of("--config")?),
            "--from" => from = Some(value_of("--from")?),
            "--dry-run" => dry_run = true,
            "--label" => label = Some(value_of("--label")?),
            "--valid" => valid = Some(value_of("--valid")?),
            "--uses" => uses = Some(value_of("--uses")?),
            a if a.starts_with("--config=") => config = Some(a["--config=".len()..].to_string()),
            a if a.starts_with("--from=") => from = Some(a["--from=".len()..].to_string()),
            a if a.starts_with('-') && a.len() > 1 && !a[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                return Err(UsageError(format!("unknown option {a}")))
            }
            a => positional.push(a.to_string()),
        }
    }
    let mut positional = positional.into_iter();
    let name = positional.next().ok_or_else(|| UsageError("no command given".into()))?;
    let command = match name.as_str() {
        "serve" => Command::Serve,
        "open" => Command::Open(positional.next()),
        "close" => Command::Close,
        "status" => Command::Status,
        "url" => Command::Url,
        "check-config" => Command::CheckConfig,
        "simulate" => Command::Simulate {
            from: from.take().ok_or_else(|| UsageError("simulate needs --from NUMBER".into()))?,
        },
        "twilio-setup" => Command::TwilioSetup { dry_run: std::mem::take(&mut dry_run) },
        "fallback-twiml" => Command::FallbackTwiml,
        "doctor" => Command::Doctor,
        "code" => match positional.next().as_deref() {
            Some("add") => {
                Command::Code(CodeArgs::Add { label: label.take(), valid: valid.take(), uses: uses.take() })
            }
            Some("list") => Command::Code(CodeArgs::List),
            Some("rm") => Command::Code(CodeArgs::Rm(
                positional.next().ok_or_else(|| UsageError("code rm needs the code's ID".into()))?,
            )),
            _ => return Err(UsageError("code needs add, list or rm".into())),
        },
        "help" => Command::Help,
        "version" => Command::Version,
        other => return Err(UsageError(format!("unknown command {other:?}"))),
    };
    if let Some(extra) = positional.next() {
        return Err(UsageError(format!("unexpected argument {extra:?}")));
    }
    if from.is_some() {
        return Err(UsageError("--from is only for simulate".into()));
    }
    if dry_run {
        return Err(UsageError("--dry-run is only for twilio-setup".into()));
    }
    if label.is_some() || valid.is_some() || uses.is_some() {
        return Err(UsageError("--label, --valid and --uses are only for code add".into()));
    }
    Ok(Args { command, config: PathBuf::from(config.unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into())) })
}

/// The command's name: the first word that is not an option or `--config`'s value.
fn command_word(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a),
        }
    }
    None
}

/// `init` has flags of its own (one per question).
fn parse_init(args: &[String]) -> Result<Args, UsageError> {
    let mut init = crate::init::InitArgs::default();
    let mut config = None;
    let mut seen_init = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "init" if !seen_init => seen_init = true,
            "--help" | "-h" => return Ok(Args { command: Command::Help, config: PathBuf::new() }),
            "--config" | "-c" => config = Some(value().map_err(UsageError)?),
            a => {
                if !crate::init::parse_flag(&mut init, a, &mut value).map_err(UsageError)? {
                    return Err(UsageError(format!("unexpected {a:?} for init")));
                }
            }
        }
    }
    let config = PathBuf::from(config.unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into()));
    Ok(Args { command: Command::Init(init), config })
}

/// Runs a command other than `serve`, `--help` and `--version`; prints its answer.
pub fn run(command: Command, config: &Config) -> Result<(), Box<dyn Error>> {
    match command {
        Command::Open(duration) => {
            let minutes = match duration {
                Some(d) => Some(window_minutes(&d, config.max_window)?),
                None => None,
            };
            let body = minutes.map_or(String::new(), |m| format!("{{\"minutes\":{m}}}"));
            print_status(&Client::new(config)?.call("POST", "/api/open", &body)?)
        }
        Command::Close => print_status(&Client::new(config)?.call("POST", "/api/close", "")?),
        Command::Status => print_status(&Client::new(config)?.call("GET", "/api/status", "")?),
        Command::Url => {
            let token = control_token(config)?;
            println!("http://{}/#t={}", display_addr(lan_address(config.control.listen)), token.expose());
            Ok(())
        }
        Command::CheckConfig => {
            print!("{}", summary(config));
            Ok(())
        }
        Command::Simulate { from } => {
            let status = match state::peek(&config.state_dir, config.max_window, SystemTime::now()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("intercom: the state file is unreadable ({e}); the server treats the window as closed");
                    state::Status::closed()
                }
            };
            let rules =
                crate::call::CallRules::new(config, config.intercom_number.as_ref(), &config.forward_to);
            let decision = crate::call::decide(Some(&from), status.is_open(), &rules);
            let offered =
                crate::codes_store::peek_offer(&config.state_dir, status.is_open(), SystemTime::now());
            let action = format!(
                "{}{}",
                config.webhook.public_url.as_deref().unwrap_or(""),
                crate::webhook::CODE_PATH
            );
            let decision = crate::call::with_code_prompt(decision, offered, &action);
            eprintln!("a call from {from} now: {}", decision.name());
            print!("{}", crate::twiml::render(&decision));
            Ok(())
        }
        Command::Code(args) => {
            let client = Client::new(config)?;
            crate::codes_cli::run(args, &|method, path, body| client.call(method, path, body))
        }
        Command::TwilioSetup { dry_run } => crate::setup::twilio_setup(config, dry_run),
        Command::FallbackTwiml => {
            print!("{}", crate::setup::fallback_twiml(config)?);
            Ok(())
        }
        Command::Serve | Command::Doctor | Command::Init(_) | Command::Help | Command::Version => {
            unreachable!("handled in main")
        }
    }
}

/// `open DUR` checked here, so the answer speaks of what was typed and of the config key
/// that limits it rather than of the API's `minutes`.
fn window_minutes(text: &str, max_window: Duration) -> Result<u64, String> {
    let minutes = config::whole_minutes(text)?;
    let max = humantime::format_duration(max_window);
    if minutes * 60 > max_window.as_secs() {
        return Err(format!("open {text}: at most {max} (max_window); try {max} or raise max_window"));
    }
    Ok(minutes)
}

fn print_status(status: &serde_json::Value) -> Result<(), Box<dyn Error>> {
    let open = status["open"].as_bool().ok_or("the server answered without \"open\"")?;
    if open {
        let left = status["remaining_seconds"].as_u64().unwrap_or(0);
        println!(
            "open until {} ({} left)",
            crate::local_time::local_rfc3339(status["open_until"].as_str().unwrap_or("?")),
            humantime::format_duration(Duration::from_secs(left))
        );
    } else {
        println!("closed");
    }
    if let Some(problem) = status["storage_problem"].as_str() {
        eprintln!("storage problem: {problem}");
    }
    Ok(())
}

/// Where a phone on the LAN reaches it: the address of the interface with the default
/// route. Connecting a UDP socket only picks the route; it sends nothing.
fn lan_address(listen: SocketAddr) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let probe = UdpSocket::bind("0.0.0.0:0").and_then(|s| s.connect("192.0.2.1:9").and(s.local_addr()));
    match probe {
        Ok(local) if !local.ip().is_unspecified() => SocketAddr::new(local.ip(), listen.port()),
        _ => {
            eprintln!("intercom: no LAN address found; printing the loopback address");
            local_address(listen)
        }
    }
}

fn summary(c: &Config) -> String {
    let secret = |s: &Option<Secret>, from_env: bool, var: &str, unset: &str| match s {
        Some(_) => format!("set (from {})", config::secret_origin(c, from_env, var)),
        None => unset.to_string(),
    };
    let numbers = |v: &[crate::phone::PhoneNumber]| {
        if v.is_empty() {
            "(none)".to_string()
        } else {
            v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        }
    };
    let rows = [
        (
            "intercom_number",
            c.intercom_number.as_ref().map_or("(not set: every call is rejected)".into(), |n| n.to_string()),
        ),
        ("forward_to", numbers(&c.forward_to)),
        ("unlock_digits", c.unlock_digits.clone()),
        ("default_window", humantime::format_duration(c.default_window).to_string()),
        ("max_window", humantime::format_duration(c.max_window).to_string()),
        ("dial_timeout", humantime::format_duration(c.dial_timeout).to_string()),
        ("no_answer_message", c.no_answer_message.clone()),
        ("state_dir", c.state_dir.display().to_string()),
        ("log_level", c.log_level.to_string().to_lowercase()),
        ("webhook.listen", c.webhook.listen.to_string()),
        ("webhook.public_url", c.webhook.public_url.clone().unwrap_or("(not set)".into())),
        ("control.listen", c.control.listen.to_string()),
        (
            "control.token",
            secret(
                &c.control.token,
                c.control.token_from_env,
                config::ENV_CONTROL_TOKEN,
                "(not set: generated on first start into state_dir/control-token)",
            ),
        ),
        ("twilio.account_sid", c.twilio.account_sid.clone().unwrap_or("(not set)".into())),
        ("twilio.sms_from", c.twilio.sms_from.as_ref().map_or("(not set)".into(), |n| n.to_string())),
        ("twilio.api_base", c.twilio.api_base.clone()),
        ("twilio.number", c.twilio.number.as_ref().map_or("(not set)".into(), |n| n.to_string())),
        ("twilio.fallback_url", c.twilio.fallback_url.clone().unwrap_or("(not set)".into())),
        (
            "twilio.api_key_sid",
            c.twilio.api_key_sid.clone().unwrap_or("(not set: REST calls use the auth token)".into()),
        ),
        (
            "twilio.api_key_secret",
            secret(
                &c.twilio.api_key_secret,
                c.twilio.api_key_secret_from_env,
                config::ENV_TWILIO_API_KEY_SECRET,
                "(not set)",
            ),
        ),
        (
            "notify.webhook_url",
            c.notify.webhook_url.as_ref().map_or("(not set)".into(), |u| {
                format!("{}/… (path and query hidden)", crate::url::url_origin(u.expose()))
            }),
        ),
        ("notify.sms_to", numbers(&c.notify.sms_to)),
        ("notify.events", c.notify.events.iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")),
        (
            "twilio.auth_token",
            secret(
                &c.twilio.auth_token,
                c.twilio.auth_token_from_env,
                config::ENV_TWILIO_AUTH_TOKEN,
                "(not set: WARNING, webhook signatures are not checked)",
            ),
        ),
    ];
    let mut out = String::from("config OK\n");
    for (k, v) in rows {
        out.push_str(&format!("  {k:<20} {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, UsageError> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn parses_the_commands() {
        assert_eq!(args("serve").unwrap().command, Command::Serve);
        assert_eq!(args("serve").unwrap().config, PathBuf::from("/etc/intercom/intercom.json"));
        let a = args("open 90m --config x.json").unwrap();
        assert_eq!((a.command, a.config), (Command::Open(Some("90m".into())), PathBuf::from("x.json")));
        assert_eq!(args("--config=y open").unwrap().command, Command::Open(None));
        assert_eq!(
            args("simulate --from +15558889999").unwrap().command,
            Command::Simulate { from: "+15558889999".into() }
        );
        assert_eq!(args("--version").unwrap().command, Command::Version);
        assert_eq!(args("twilio-setup --dry-run").unwrap().command, Command::TwilioSetup { dry_run: true });
        assert_eq!(args("twilio-setup").unwrap().command, Command::TwilioSetup { dry_run: false });
        assert_eq!(args("doctor -c x").unwrap().command, Command::Doctor);
        assert_eq!(
            args("code add --label plumber --valid 4h --uses 2").unwrap().command,
            Command::Code(CodeArgs::Add {
                label: Some("plumber".into()),
                valid: Some("4h".into()),
                uses: Some("2".into())
            })
        );
        assert_eq!(args("code list").unwrap().command, Command::Code(CodeArgs::List));
        assert_eq!(args("code rm ab12").unwrap().command, Command::Code(CodeArgs::Rm("ab12".into())));
        let a = args("-c x.json init --forward-to +15552223333 --learn-intercom").unwrap();
        assert_eq!(a.config, PathBuf::from("x.json"));
        let Command::Init(init) = a.command else { panic!("not init") };
        assert!(init.learn && init.forward_to.as_deref() == Some("+15552223333"));
        assert!(
            args("init --forward-to").is_err() && args("init --from x").is_err() && args("init x").is_err()
        );
    }

    #[test]
    fn refuses_bad_arguments() {
        for bad in [
            "",
            "fly",
            "open 1h 2h",
            "simulate",
            "status --from +1555",
            "serve --config",
            "serve --verbose",
            "doctor --dry-run",
            "code",
            "code rm",
            "code list --uses 2",
            "open --label x",
            "code add --valid",
            "code rm a b",
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn open_durations_speak_of_what_was_typed() {
        let max = Duration::from_secs(12 * 3600);
        assert_eq!(window_minutes("1h30m", max), Ok(90));
        assert_eq!(window_minutes("12h", max), Ok(720));
        assert_eq!(
            window_minutes("24h", max).unwrap_err(),
            "open 24h: at most 12h (max_window); try 12h or raise max_window"
        );
        assert!(window_minutes("90", max).unwrap_err().contains("write 90m"));
    }

    #[test]
    fn summary_masks_secrets() {
        let c = config::parse(
            r#"{"webhook": {"public_url": "https://d.example"}, "twilio": {"auth_token": "supersecret-auth",
                "api_key_sid": "SK1", "api_key_secret": "supersecret-key"}, "control": {"token": "supersecret-control"}}"#,
            |_| None,
        )
        .unwrap();
        let s = summary(&c);
        assert!(!s.contains("supersecret"), "{s}");
        assert!(s.contains("twilio.auth_token") && s.contains("set"));
    }
}
