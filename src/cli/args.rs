//! The command line, parsed with `lexopt` (small, no dependencies): the global options,
//! the command, then that command's own flags and arguments. `--flag value` and
//! `--flag=value` both work everywhere, and `intercom <command> --help` prints the
//! command's own usage. A new command is one [`Spec`] in [`COMMANDS`] and one arm in
//! [`command`].

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::cli::codes::CodeArgs;
use crate::cli::devices::DeviceArgs;
use crate::cli::init::InitArgs;
use crate::cli::schedule::ScheduleArgs;
use crate::config;

/// What `main` does with the command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Print this text (the overview or a command's usage) and exit 0.
    Help(String),
    Version,
    Serve {
        config: PathBuf,
    },
    Run {
        command: Command,
        config: PathBuf,
    },
}

/// The commands other than `serve`, as typed; values are checked when run, in the terms
/// the user typed them.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Open {
        duration: Option<String>,
        once: bool,
    },
    Close,
    Status,
    LetIn,
    Url,
    CheckConfig,
    Simulate {
        from: String,
    },
    TwilioSetup {
        dry_run: bool,
    },
    FallbackTwiml,
    Doctor,
    Code(CodeArgs),
    Devices(DeviceArgs),
    /// Boxed: eleven answers, against a few bytes for the other commands.
    Init(Box<InitArgs>),
    Schedule(ScheduleArgs),
}

/// A usage error: `main` prints it with a pointer to the help and exits 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> UsageError {
        UsageError(e.to_string())
    }
}

/// One command: its name as typed (a group's commands are "code add"), the usage line,
/// what it does, and its flags (`name`, whether it takes a value).
pub struct Spec {
    pub name: &'static str,
    pub usage: &'static str,
    pub about: &'static str,
    flags: &'static [(&'static str, bool)],
    /// How many plain arguments it takes at most.
    args: usize,
}

const DURATIONS: &str = "DUR is a length with its unit: 30m, 90m, 2h, 1h30m, 1d, 1w.";

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "serve",
        usage: "serve",
        about: "Run the server: both listeners, until stopped.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "open",
        usage: "open [--once] [DUR]",
        about: "Open the window: every call from the intercom unlocks the door until it ends.\n\
                Without DUR it opens for default_window; at most max_window. With --once, for\n\
                the next visitor only: the first unlock closes it (\"let the next visitor in\").",
        flags: &[("once", false)],
        args: 1,
    },
    Spec { name: "close", usage: "close", about: "Close the window now.", flags: &[], args: 0 },
    Spec { name: "let-in", usage: "let-in", about: "Let in the visitor ringing now.", flags: &[], args: 0 },
    Spec {
        name: "status",
        usage: "status",
        about: "Show whether the window is open, and until when.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "url",
        usage: "url",
        about: "Print the control page's LAN address, with the token: open it on your phone.\n\
                The page keeps the token only until it is reloaded; for a phone that stays\n\
                in, use `intercom pair NAME`.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "check-config",
        usage: "check-config",
        about: "Check the config and print what it says, with secrets masked.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "simulate",
        usage: "simulate --from NUMBER",
        about: "Print the TwiML a call from NUMBER would get now, and which decision it is.",
        flags: &[("from", true)],
        args: 0,
    },
    Spec {
        name: "twilio-setup",
        usage: "twilio-setup [--dry-run]",
        about: "Point the Twilio number's voice webhook (and fallback) at this server.\n\
                --dry-run shows what would change and changes nothing.",
        flags: &[("dry-run", false)],
        args: 0,
    },
    Spec {
        name: "fallback-twiml",
        usage: "fallback-twiml",
        about: "Print the forward-only TwiML for the number's fallback (a TwiML Bin), so\n\
                visitors still reach you while this server or the tunnel is down.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "doctor",
        usage: "doctor",
        about: "Check the whole chain (config, server, tunnel, Twilio, disk, clock) and say\n\
                what to fix. Exits 1 if anything fails.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "code add",
        usage: "code add [--label TEXT] [--valid DUR] [--uses N]",
        about: "Make a guest code (6 digits) and print it. Defaults: label \"guest\", valid 1d, 1 use;\n\
                at most 1w and 20 uses.",
        flags: &[("label", true), ("valid", true), ("uses", true)],
        args: 0,
    },
    Spec {
        name: "code list",
        usage: "code list",
        about: "List the active guest codes.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "code rm",
        usage: "code rm ID",
        about: "Delete a guest code (ID as `intercom code list` shows it).",
        flags: &[],
        args: 1,
    },
    Spec {
        name: "schedule add",
        usage: "schedule add DAYS FROM-TO [--label TEXT] [--entrance NAME]",
        about: "Add a recurring window in local time, e.g. `schedule add mon-fri 08:00-18:00\n\
                --label deliveries`. DAYS: mon..sun, lists and ranges (sat,sun; mon-fri) or daily.\n\
                --entrance limits it to one of the intercoms (by name); else it is for all.",
        flags: &[("label", true), ("entrance", true)],
        args: 2,
    },
    Spec {
        name: "schedule list",
        usage: "schedule list",
        about: "List the schedules, the time zone they follow, and which is open now.",
        flags: &[],
        args: 0,
    },
    Spec { name: "schedule rm", usage: "schedule rm ID", about: "Delete a schedule.", flags: &[], args: 1 },
    Spec {
        name: "schedule pause",
        usage: "schedule pause ID",
        about: "Pause a schedule: it opens nothing until resumed.",
        flags: &[],
        args: 1,
    },
    Spec {
        name: "pair",
        usage: "pair NAME",
        about: "Pair a phone: print a one-time link and its QR code (valid 10 minutes) that\n\
                gives the phone that opens it its own key to the page. NAME is whose it is,\n\
                as the history will say: intercom pair \"Anna's phone\".",
        flags: &[],
        args: 1,
    },
    Spec {
        name: "devices",
        usage: "devices",
        about: "List the paired devices: id, name, when paired, last use.",
        flags: &[],
        args: 0,
    },
    Spec {
        name: "devices rm",
        usage: "devices rm ID",
        about: "Remove a paired device (ID as `intercom devices` shows it): shut out from\n\
                its next request on.",
        flags: &[],
        args: 1,
    },
    Spec {
        name: "schedule resume",
        usage: "schedule resume ID",
        about: "Resume a paused schedule.",
        flags: &[],
        args: 1,
    },
    Spec {
        name: "init",
        usage: "init [--force] [ANSWERS AS FLAGS]",
        about: "First setup: writes the config (0644) and the secrets file intercom.env (0600).\n\
                Alone it asks for each value in turn and checks it as you type. With the answers\n\
                as flags it asks nothing: --account-sid AC… --auth-token T --twilio-number N\n\
                --forward-to N[,N] --public-url URL [--api-key-sid SK… --api-key-secret S]\n\
                [--intercom-number N | --learn-intercom [--learn-timeout DUR]].\n\
                The intercom's number can be learned: --learn-intercom (or Enter when asked)\n\
                waits for the next call the running server rejects and takes its caller ID;\n\
                alone, it sets just intercom_number in a config that is otherwise done.\n\
                It replaces only the untouched template unless --force is given.",
        flags: &[
            ("account-sid", true),
            ("auth-token", true),
            ("api-key-sid", true),
            ("api-key-secret", true),
            ("twilio-number", true),
            ("forward-to", true),
            ("public-url", true),
            ("intercom-number", true),
            ("learn-intercom", false),
            ("learn-timeout", true),
            ("force", false),
        ],
        args: 0,
    },
];

/// The overview `intercom --help` prints: every command's usage line.
pub fn overview() -> String {
    let mut out = String::from("usage: intercom [--config FILE] COMMAND [ARGS]\n\ncommands:\n");
    for spec in COMMANDS {
        let first = spec.about.lines().next().unwrap_or("");
        out.push_str(&format!("  intercom {:<50} {first}\n", spec.usage));
    }
    out.push_str(&format!(
        "  intercom {:<50} this text, or a command's own help\n  intercom {:<50} the version\n\n\
         Every command takes --config FILE (default {}).\n{DURATIONS}",
        "--help | COMMAND --help",
        "--version",
        config::DEFAULT_CONFIG_PATH
    ));
    out
}

/// A command's own help.
pub fn usage(spec: &Spec) -> String {
    let takes_duration = spec.usage.contains("DUR");
    format!(
        "usage: intercom {} [--config FILE]\n\n{}\n\n--config FILE  the config file (default {}){}",
        spec.usage,
        spec.about,
        config::DEFAULT_CONFIG_PATH,
        if takes_duration { format!("\n{DURATIONS}") } else { String::new() }
    )
}

pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let mut p = lexopt::Parser::from_args(args);
    let mut config: Option<PathBuf> = None;
    let mut words: Vec<String> = Vec::new();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut help = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("help") | Short('h') => help = true,
            Long("version") | Short('V') if words.is_empty() => return Ok(Invocation::Version),
            Long("config") | Short('c') => config = Some(p.value()?.into()),
            Long(name) => {
                let name = name.to_string();
                let takes_value = spec_of(&words)
                    .and_then(|s| s.flags.iter().find(|(f, _)| *f == name))
                    .is_some_and(|(_, takes)| *takes);
                let value = if takes_value {
                    Some(text(p.value()?)?)
                } else {
                    p.optional_value().map(text).transpose()?
                };
                flags.push((name, value));
            }
            Short(c) => return Err(UsageError(format!("unknown option -{c}"))),
            Value(v) => words.push(text(v)?),
        }
    }
    if words.is_empty() {
        return if help {
            Ok(Invocation::Help(overview()))
        } else {
            Err(UsageError("no command given".into()))
        };
    }
    if words[0] == "help" {
        let topic = &words[1..];
        return match spec_of(topic) {
            Some(spec) if !topic.is_empty() => Ok(Invocation::Help(usage(spec))),
            _ => Ok(Invocation::Help(overview())),
        };
    }
    if words[0] == "version" && words.len() == 1 {
        return Ok(Invocation::Version);
    }
    let spec = spec_of(&words).ok_or_else(|| unknown(&words))?;
    if help {
        return Ok(Invocation::Help(usage(spec)));
    }
    let name_words = spec.name.split(' ').count();
    let positional = &words[name_words..];
    if positional.len() > spec.args {
        return Err(UsageError(format!(
            "unexpected argument {:?}; see `intercom {} --help`",
            positional[spec.args], spec.name
        )));
    }
    for (flag, value) in &flags {
        match spec.flags.iter().find(|(f, _)| f == flag) {
            None => {
                return Err(UsageError(format!(
                    "`intercom {}` has no option --{flag}; see `intercom {} --help`",
                    spec.name, spec.name
                )))
            }
            Some((_, false)) if value.is_some() => {
                return Err(UsageError(format!("--{flag} takes no value")));
            }
            _ => {}
        }
    }
    let flag = |name: &str| flags.iter().rev().find(|(f, _)| f == name).and_then(|(_, v)| v.clone());
    let has = |name: &str| flags.iter().any(|(f, _)| f == name);
    let arg = |i: usize| positional.get(i).cloned();
    let config = config.unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into());
    let command = match spec.name {
        "serve" => return Ok(Invocation::Serve { config }),
        "open" => Command::Open { duration: arg(0), once: has("once") },
        "close" => Command::Close,
        "let-in" => Command::LetIn,
        "status" => Command::Status,
        "url" => Command::Url,
        "check-config" => Command::CheckConfig,
        "simulate" => Command::Simulate {
            from: flag("from").ok_or_else(|| UsageError("simulate needs --from NUMBER".into()))?,
        },
        "twilio-setup" => Command::TwilioSetup { dry_run: has("dry-run") },
        "fallback-twiml" => Command::FallbackTwiml,
        "doctor" => Command::Doctor,
        "code add" => {
            Command::Code(CodeArgs::Add { label: flag("label"), valid: flag("valid"), uses: flag("uses") })
        }
        "code list" => Command::Code(CodeArgs::List),
        "code rm" => {
            Command::Code(CodeArgs::Rm(arg(0).ok_or_else(|| {
                UsageError("code rm needs the code's ID (see `intercom code list`)".into())
            })?))
        }
        "pair" => Command::Devices(DeviceArgs::Pair(
            arg(0).ok_or_else(|| UsageError("pair needs a name: intercom pair \"Anna's phone\"".into()))?,
        )),
        "devices" => Command::Devices(DeviceArgs::List),
        "devices rm" => Command::Devices(DeviceArgs::Rm(arg(0).ok_or_else(|| {
            UsageError("devices rm needs the device's ID (see `intercom devices`)".into())
        })?)),
        "init" => Command::Init(Box::new(InitArgs {
            account_sid: flag("account-sid"),
            auth_token: flag("auth-token"),
            api_key_sid: flag("api-key-sid"),
            api_key_secret: flag("api-key-secret"),
            twilio_number: flag("twilio-number"),
            forward_to: flag("forward-to"),
            public_url: flag("public-url"),
            intercom_number: flag("intercom-number"),
            learn: has("learn-intercom"),
            learn_timeout: flag("learn-timeout"),
            force: has("force"),
        })),
        "schedule add" => match (arg(0), arg(1)) {
            (Some(days), Some(range)) => {
                let (label, entrance) = (flag("label"), flag("entrance"));
                Command::Schedule(ScheduleArgs::Add { days, range, label, entrance })
            }
            _ => {
                return Err(UsageError(
                    "schedule add needs DAYS and FROM-TO, e.g. mon-fri 08:00-18:00".into(),
                ))
            }
        },
        "schedule list" => Command::Schedule(ScheduleArgs::List),
        name @ ("schedule rm" | "schedule pause" | "schedule resume") => {
            let id = arg(0).ok_or_else(|| {
                UsageError(format!("{name} needs the schedule's ID (see `intercom schedule list`)"))
            })?;
            Command::Schedule(match name {
                "schedule rm" => ScheduleArgs::Rm(id),
                "schedule pause" => ScheduleArgs::Pause(id),
                _ => ScheduleArgs::Resume(id),
            })
        }
        other => unreachable!("{other} is in COMMANDS but not parsed"),
    };
    Ok(Invocation::Run { command, config })
}

/// The command the first words name: "code add", or "open".
fn spec_of(words: &[String]) -> Option<&'static Spec> {
    let two = words.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
    COMMANDS
        .iter()
        .find(|s| s.name.contains(' ') && s.name == two)
        .or_else(|| COMMANDS.iter().find(|s| Some(s.name) == words.first().map(String::as_str)))
}

fn unknown(words: &[String]) -> UsageError {
    let group: Vec<&str> =
        COMMANDS.iter().filter_map(|s| s.name.strip_prefix(&format!("{} ", words[0]))).collect();
    if !group.is_empty() {
        return UsageError(format!("`intercom {}` needs one of: {}", words[0], group.join(", ")));
    }
    UsageError(format!("unknown command {:?}; `intercom --help` lists them", words[0]))
}

fn text(v: OsString) -> Result<String, UsageError> {
    v.into_string().map_err(|v| UsageError(format!("{v:?} is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Invocation, UsageError> {
        parse_args(s.split_whitespace().map(OsString::from))
    }

    fn run(s: &str) -> Command {
        match args(s) {
            Ok(Invocation::Run { command, .. }) => command,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn parses_the_commands() {
        assert_eq!(
            args("serve").unwrap(),
            Invocation::Serve { config: "/etc/intercom/intercom.json".into() }
        );
        assert_eq!(
            args("open 90m --config x.json").unwrap(),
            Invocation::Run {
                command: Command::Open { duration: Some("90m".into()), once: false },
                config: "x.json".into()
            }
        );
        assert_eq!(
            args("--config=y open").unwrap(),
            Invocation::Run { command: Command::Open { duration: None, once: false }, config: "y".into() }
        );
        assert_eq!(run("simulate --from +15558889999"), Command::Simulate { from: "+15558889999".into() });
        assert_eq!(run("simulate --from=+15558889999"), Command::Simulate { from: "+15558889999".into() });
        assert_eq!(args("--version").unwrap(), Invocation::Version);
        assert_eq!(run("twilio-setup --dry-run"), Command::TwilioSetup { dry_run: true });
        assert_eq!(run("twilio-setup"), Command::TwilioSetup { dry_run: false });
        assert_eq!(run("doctor -c x"), Command::Doctor);
        assert_eq!(
            run("code add --label plumber --valid=4h --uses 2"),
            Command::Code(CodeArgs::Add {
                label: Some("plumber".into()),
                valid: Some("4h".into()),
                uses: Some("2".into())
            })
        );
        assert_eq!(run("code list"), Command::Code(CodeArgs::List));
        assert_eq!(run("code rm ab12"), Command::Code(CodeArgs::Rm("ab12".into())));
        assert_eq!(run("pair Anna"), Command::Devices(DeviceArgs::Pair("Anna".into())));
        assert_eq!(run("devices"), Command::Devices(DeviceArgs::List));
        assert_eq!(run("devices rm ab12"), Command::Devices(DeviceArgs::Rm("ab12".into())));
        let Command::Init(init) = run("-c x.json init --forward-to=+15552223333 --learn-intercom") else {
            panic!("not init")
        };
        assert!(init.learn && init.forward_to.as_deref() == Some("+15552223333") && !init.force);
        assert!(
            args("init --forward-to").is_err() && args("init --from x").is_err() && args("init x").is_err()
        );
        let open = |d: Option<&str>, once| Command::Open { duration: d.map(String::from), once };
        assert_eq!(run("open --once 30m"), open(Some("30m"), true));
        assert_eq!(run("open 30m --once"), open(Some("30m"), true));
        assert_eq!(run("open --once"), open(None, true));
        assert_eq!(
            run("schedule add mon-fri 08:00-18:00 --label deliveries"),
            Command::Schedule(ScheduleArgs::Add {
                days: "mon-fri".into(),
                range: "08:00-18:00".into(),
                label: Some("deliveries".into()),
                entrance: None
            })
        );
        assert_eq!(run("schedule list"), Command::Schedule(ScheduleArgs::List));
        assert_eq!(run("schedule pause ab12"), Command::Schedule(ScheduleArgs::Pause("ab12".into())));
        assert_eq!(run("schedule resume ab12"), Command::Schedule(ScheduleArgs::Resume("ab12".into())));
        assert_eq!(run("schedule rm ab12"), Command::Schedule(ScheduleArgs::Rm("ab12".into())));
        for bad in [
            "open --once=yes",
            "close --once",
            "schedule add mon",
            "schedule rm",
            "schedule",
            "schedule add mon 08:00-09:00 --uses 2",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_command_has_its_own_help() {
        for spec in COMMANDS {
            let typed = format!("{} --help", spec.name);
            let Ok(Invocation::Help(text)) = args(&typed) else { panic!("{typed}") };
            assert!(text.starts_with(&format!("usage: intercom {}", spec.usage)), "{text}");
            assert_eq!(args(&format!("help {}", spec.name)).unwrap(), Invocation::Help(text));
            assert!(overview().contains(spec.usage), "{}", spec.name);
        }
        let Ok(Invocation::Help(open)) = args("open --help") else { panic!() };
        assert!(open.contains("90m") && open.contains("1w"), "{open}");
        assert_eq!(args("--help").unwrap(), Invocation::Help(overview()));
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
            "pair",
            "pair a b",
            "devices x",
            "devices rm",
            "twilio-setup --dry-run=yes",
            "open -x",
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        assert!(args("status --from +1555").unwrap_err().0.contains("intercom status --help"));
        assert!(args("code").unwrap_err().0.contains("add, list, rm"));
    }
}
