//! The command line: the global options, the command's words, then the command's own
//! parser, one loop over its `lexopt` arguments that checks and converts each value as it
//! is read (`reader.rs`), so a mistake is told in the terms it was typed in. Each command
//! is one [`Spec`] in [`COMMANDS`]: its usage line, its help and its parser. The overview,
//! `intercom X --help`, `intercom help X` and the parser all read it, and a flag exists
//! only where the command's help names it.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

use crate::cli::codes::CodeArgs;
use crate::cli::devices::DeviceArgs;
use crate::cli::init::InitArgs;
use crate::cli::init_ask::check_phone;
use crate::cli::reader::{name, nearest, Args, UsageError};
use crate::cli::schedule::ScheduleArgs;
use crate::cli::{codes, init, schedule};
use crate::config;
use crate::model::api::OpenRequest;
use crate::model::phone::PhoneNumber;

/// What `main` does with the command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Print this text (the overview or a command's help) and exit 0.
    Help(String),
    Version,
    /// `serve`, with the config file.
    Serve(PathBuf),
    /// Another command, with the config file.
    Run(Command, PathBuf),
}

/// The commands other than `serve`, each with its arguments checked and converted.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `max_window` is checked when run, against the config.
    Open(OpenRequest),
    Close,
    Status,
    LetIn,
    Url,
    CheckConfig,
    /// `--from`: the caller.
    Simulate(PhoneNumber),
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

/// One command.
pub struct Spec {
    /// Its words, then what it takes: `code add [--label TEXT] [--valid DUR] [--uses N]`.
    pub usage: &'static str,
    /// A one-line summary (the overview shows it), then the rest of its own help.
    pub about: &'static str,
    pub parse: fn(&mut Args) -> Result<Invocation, UsageError>,
}

impl Spec {
    pub fn name(&self) -> &'static str {
        name(self.usage)
    }
}

/// The command, once its parser has read everything.
fn run(a: &mut Args, command: Command) -> Result<Invocation, UsageError> {
    Ok(Invocation::Run(command, a.finish()?))
}

/// What `schedule rm|pause|resume` take.
const SCHEDULE_ID: &str = "the schedule's ID (see `intercom schedule list`)";
const DURATIONS: &str = "DUR is a length: 90m, 2h, 1h30, 2 hours, 1d, 1w; a bare number is minutes.";

/// Every command, in the order the overview lists them.
pub const COMMANDS: [Spec; 23] = [
    Spec {
        usage: "serve",
        about: "Run the server: both listeners, until stopped.",
        parse: |a| Ok(Invocation::Serve(a.finish()?)),
    },
    Spec {
        usage: "open [--once] [DUR]",
        about: "Open the window: calls from the intercom unlock the door until it ends.\n\
                Without DUR it opens for default_window; at most max_window. With --once, for\n\
                the next visitor only: the first unlock closes it (\"let the next visitor in\").",
        parse: open,
    },
    Spec {
        usage: "close",
        about: "Close the window now.\n\
                A schedule open now still lets visitors in: close names it and how to pause it.",
        parse: |a| run(a, Command::Close),
    },
    Spec {
        usage: "let-in",
        about: "Let in the visitor whose call rings your phones now.\n\
                The door tones are played on the live call, once; says so when nobody rings.",
        parse: |a| run(a, Command::LetIn),
    },
    Spec {
        usage: "status",
        about: "Show whether the window is open, and until when.",
        parse: |a| run(a, Command::Status),
    },
    Spec {
        usage: "url",
        about: "Print the control page's address on the LAN.\n\
                A phone opens it once paired (`intercom pair NAME`); no URL carries the token.",
        parse: |a| run(a, Command::Url),
    },
    Spec {
        usage: "check-config",
        about: "Check the config and print what it says, with secrets masked.",
        parse: |a| run(a, Command::CheckConfig),
    },
    Spec {
        usage: "simulate --from NUMBER",
        about: "Print the TwiML a call from NUMBER would get now, and why.\n\
                It reads the state as it is on disk and changes nothing.",
        parse: simulate,
    },
    Spec {
        usage: "twilio-setup [--dry-run]",
        about: "Point the Twilio number's voice webhook (and fallback) at this server.\n\
                --dry-run shows what would change and changes nothing.",
        parse: twilio_setup,
    },
    Spec {
        usage: "fallback-twiml",
        about: "Print the forward-only TwiML for the number's fallback (a TwiML Bin).\n\
                With it, visitors still reach you while this server or the tunnel is down.",
        parse: |a| run(a, Command::FallbackTwiml),
    },
    Spec {
        usage: "doctor",
        about: "Check the whole chain and say what to fix; exits 1 if anything fails.\n\
                It checks the config, the server, the tunnel, Twilio, the disk and the clock.",
        parse: |a| run(a, Command::Doctor),
    },
    Spec {
        usage: "code add [--label TEXT] [--valid DUR] [--uses N]",
        about: "Make a guest code (6 digits) and print it.\n\
                Defaults: label \"guest\", valid 1d, 1 use; at most 1w and 20 uses.",
        parse: |a| codes::parse_add(a).and_then(|add| run(a, Command::Code(add))),
    },
    Spec {
        usage: "code list",
        about: "List the active guest codes.",
        parse: |a| run(a, Command::Code(CodeArgs::List)),
    },
    Spec {
        usage: "code rm ID",
        about: "Delete a guest code (ID as `intercom code list` shows it).",
        parse: |a| by_id(a, "the code's ID (see `intercom code list`)", |id| Command::Code(CodeArgs::Rm(id))),
    },
    Spec {
        usage: "schedule add DAYS FROM-TO [--label TEXT] [--entrance NAME]",
        about: "Add a recurring window in local time.\n\
                For example `schedule add mon-fri 08:00-18:00 --label deliveries`. DAYS: mon..sun,\n\
                lists and ranges (sat,sun; mon-fri) or daily. --entrance limits it to one of\n\
                the intercoms (by name); else it is for all.",
        parse: |a| schedule::parse_add(a).and_then(|add| run(a, Command::Schedule(add))),
    },
    Spec {
        usage: "schedule list",
        about: "List the schedules, the time zone they follow, and which is open now.",
        parse: |a| run(a, Command::Schedule(ScheduleArgs::List)),
    },
    Spec {
        usage: "schedule rm ID",
        about: "Delete a schedule.",
        parse: |a| by_id(a, SCHEDULE_ID, |id| Command::Schedule(ScheduleArgs::Rm(id))),
    },
    Spec {
        usage: "schedule pause ID",
        about: "Pause a schedule: it opens nothing until resumed.",
        parse: |a| by_id(a, SCHEDULE_ID, |id| Command::Schedule(ScheduleArgs::Pause(id))),
    },
    Spec {
        usage: "schedule resume ID",
        about: "Resume a paused schedule.",
        parse: |a| by_id(a, SCHEDULE_ID, |id| Command::Schedule(ScheduleArgs::Resume(id))),
    },
    Spec {
        usage: "pair NAME",
        about: "Pair a phone: print a one-time link and its QR code, valid 10 minutes.\n\
                The link gives the phone that opens it its own key to the page. NAME is whose\n\
                it is, as the history will say: intercom pair \"Anna's phone\".",
        parse: |a| {
            let name = a.one("a name: intercom pair \"Anna's phone\"")?;
            let name = crate::store::devices::check_name(&name).map_err(UsageError)?;
            run(a, Command::Devices(DeviceArgs::Pair(name)))
        },
    },
    Spec {
        usage: "devices",
        about: "List the paired devices: id, name, when paired, last use.",
        parse: |a| run(a, Command::Devices(DeviceArgs::List)),
    },
    Spec {
        usage: "devices rm ID",
        about: "Remove a paired device (ID as `intercom devices` shows it).\n\
                It is shut out from its next request on.",
        parse: |a| {
            by_id(a, "the device's ID (see `intercom devices`)", |id| Command::Devices(DeviceArgs::Rm(id)))
        },
    },
    Spec {
        usage: "init [--force] [ANSWERS AS FLAGS]",
        about: "First setup: write the config and the secrets file beside it.\n\
                The config is written 0644 and the secrets file intercom.env 0600. Alone, init\n\
                asks for each value in turn and checks it as you type. With the answers as flags\n\
                it asks nothing: --account-sid AC… --auth-token T --twilio-number N\n\
                --forward-to N[,N] --public-url URL [--api-key-sid SK… --api-key-secret S]\n\
                [--intercom-number N | --learn-intercom [--learn-timeout DUR]].\n\
                The intercom's number can be learned: --learn-intercom (or Enter when asked)\n\
                waits for the next call the running server rejects and takes its caller ID;\n\
                alone, it sets just intercom_number in a config that is otherwise done.\n\
                It replaces only the untouched template unless --force is given.",
        parse: |a| init::parse(a).and_then(|args| run(a, Command::Init(Box::new(args)))),
    },
];

fn open(a: &mut Args) -> Result<Invocation, UsageError> {
    // "2 hours" may come as two words.
    let (mut words, mut once) = (Vec::new(), false);
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("once") => once = true,
            Value(v) => words.push(v.string()?),
            arg => return Err(a.unexpected(arg)),
        }
    }
    let minutes = (!words.is_empty()).then(|| config::whole_minutes(&words.join(" "))).transpose();
    run(a, Command::Open(OpenRequest { minutes: minutes.map_err(UsageError)?, once: once.then_some(true) }))
}

fn simulate(a: &mut Args) -> Result<Invocation, UsageError> {
    let mut from = None;
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("from") => from = Some(a.value(check_phone)?),
            arg => return Err(a.unexpected(arg)),
        }
    }
    let from = from.ok_or_else(|| a.missing("--from NUMBER"))?;
    run(a, Command::Simulate(from))
}

fn twilio_setup(a: &mut Args) -> Result<Invocation, UsageError> {
    let mut dry_run = false;
    while let Some(arg) = a.next_arg()? {
        match arg {
            Long("dry-run") => dry_run = true,
            arg => return Err(a.unexpected(arg)),
        }
    }
    run(a, Command::TwilioSetup { dry_run })
}

/// A command whose one argument is an ID: `what` it is, and the command it makes.
fn by_id(a: &mut Args, what: &str, command: fn(String) -> Command) -> Result<Invocation, UsageError> {
    let id = a.id(what)?;
    run(a, command(id))
}

pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let args: Vec<OsString> = args.into_iter().collect();
    let help = args.iter().any(|a| a == "--help" || a == "-h");
    let mut p = lexopt::Parser::from_args(args);
    let (mut config, mut words) = (None, Vec::<String>::new());
    while words.is_empty() {
        match p.next()? {
            None => break,
            Some(Long("help") | Short('h')) => {}
            Some(Long("version") | Short('V')) => return Ok(Invocation::Version),
            Some(Long("config") | Short('c')) => config = Some(p.value()?.into()),
            Some(Value(v)) => words.push(v.string()?),
            Some(arg) => return Err(arg.unexpected().into()),
        }
    }
    // A group's command is two words (`code add`, `devices rm`), and `help` takes a
    // topic; what follows is the command's own, for its parser.
    let named = |name: &str| COMMANDS.iter().any(|s| s.name() == name);
    let takes = |typed: &str, next: &str| {
        let group = COMMANDS.iter().any(|s| s.name().starts_with(&format!("{typed} ")));
        group && (!named(typed) || named(&format!("{typed} {next}")))
    };
    while let Some(word) = p.raw_args()?.next_if(|a| {
        a.to_str().is_some_and(|a| {
            !a.starts_with('-') && words.first().is_some_and(|w| w == "help" || takes(&words.join(" "), a))
        })
    }) {
        words.push(word.string()?);
    }
    let typed = words.join(" ");
    if typed == "version" {
        return Ok(Invocation::Version);
    }
    if words.first().is_some_and(|w| w == "help") {
        return help_on(&words[1..].join(" "));
    }
    if help {
        return help_on(&typed);
    }
    let spec = COMMANDS.iter().find(|s| s.name() == typed).ok_or_else(|| unknown(&typed))?;
    (spec.parse)(&mut Args { p, help: [spec.usage, spec.about], config, flag: "" })
}

fn unknown(typed: &str) -> UsageError {
    let group: Vec<&str> =
        COMMANDS.iter().filter_map(|s| s.name().strip_prefix(typed)?.strip_prefix(' ')).collect();
    let names = COMMANDS.iter().flat_map(|s| [s.name(), s.name().split(' ').next().unwrap_or("")]);
    UsageError(match nearest(typed, names) {
        _ if typed.is_empty() => "no command given; `intercom --help` lists them".into(),
        _ if !group.is_empty() => format!("`intercom {typed}` needs one of: {}", group.join(", ")),
        Some(name) => format!("unknown command `{typed}`; did you mean `{name}`?"),
        None => format!("unknown command `{typed}`; `intercom --help` lists them"),
    })
}

/// The overview `intercom --help` prints: every command's usage and summary.
pub fn overview() -> String {
    let line = |s: &Spec| format!("  intercom {}\n      {}\n", s.usage, s.about.lines().next().unwrap_or(""));
    let commands: String = COMMANDS.iter().map(line).collect();
    format!(
        "usage: intercom [--config FILE] COMMAND [ARGS]\n\ncommands:\n{commands}  \
         intercom --help | help COMMAND | COMMAND --help\n      This text, or a command's own help.\n  \
         intercom --version\n      The version.\n\nEvery command takes --config FILE (default {}).\n{DURATIONS}",
        config::DEFAULT_CONFIG_PATH
    )
}

/// The help on a command (`open`), on a group (`schedule`: each of its commands), or
/// the overview.
fn help_on(topic: &str) -> Result<Invocation, UsageError> {
    if topic.is_empty() {
        return Ok(Invocation::Help(overview()));
    }
    let specs = COMMANDS.iter().filter(|s| s.name() == topic || s.name().starts_with(&format!("{topic} ")));
    let blocks: Vec<String> = specs.map(|s| format!("usage: intercom {}\n\n{}", s.usage, s.about)).collect();
    if blocks.is_empty() {
        return Err(unknown(topic));
    }
    let mut out = blocks.join("\n\n");
    out.push_str(&format!("\n\n--config FILE  the config file (default {})", config::DEFAULT_CONFIG_PATH));
    if out.contains("DUR") {
        out.push_str(&format!("\n{DURATIONS}"));
    }
    Ok(Invocation::Help(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn args(s: &str) -> Result<Invocation, UsageError> {
        parse_args(s.split_whitespace().map(OsString::from))
    }

    fn run(s: &str) -> Command {
        match args(s) {
            Ok(Invocation::Run(command, _)) => command,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).unwrap()
    }

    #[test]
    fn parses_the_commands_into_checked_values() {
        assert_eq!(args("serve").unwrap(), Invocation::Serve("/etc/intercom/intercom.json".into()));
        let open = |minutes: Option<u64>, once: bool| {
            Command::Open(OpenRequest { minutes, once: once.then_some(true) })
        };
        assert_eq!(
            args("open 90m --config x.json").unwrap(),
            Invocation::Run(open(Some(90), false), "x.json".into())
        );
        assert_eq!(args("--config=y open").unwrap(), Invocation::Run(open(None, false), "y".into()));
        assert_eq!(run("open --once 1h30m"), open(Some(90), true));
        assert_eq!(run("open 30m --once"), open(Some(30), true));
        for typed in ["open 90", "open 1h30", "open 1.5H", "open 1 hour 30 minutes", "open --once 90 min"] {
            assert_eq!(run(typed), open(Some(90), typed.contains("once")), "{typed}");
        }
        assert_eq!(run("simulate --from +15558889999"), Command::Simulate(phone("+15558889999")));
        assert_eq!(run("simulate --from=+15558889999"), Command::Simulate(phone("+15558889999")));
        assert_eq!(args("--version").unwrap(), Invocation::Version);
        assert_eq!(run("twilio-setup --dry-run"), Command::TwilioSetup { dry_run: true });
        assert_eq!(run("twilio-setup"), Command::TwilioSetup { dry_run: false });
        assert_eq!(run("doctor -c x"), Command::Doctor);
        assert_eq!(
            run("code add --label plumber --valid=4h --uses 2"),
            Command::Code(CodeArgs::Add(crate::model::api::NewCodeRequest {
                label: Some("plumber".into()),
                minutes: Some(240),
                uses: Some(2)
            }))
        );
        assert_eq!(run("code list"), Command::Code(CodeArgs::List));
        assert_eq!(run("code rm ab12"), Command::Code(CodeArgs::Rm("ab12".into())));
        assert_eq!(run("pair Anna"), Command::Devices(DeviceArgs::Pair("Anna".into())));
        assert_eq!(run("devices"), Command::Devices(DeviceArgs::List));
        assert_eq!(run("devices rm ab12"), Command::Devices(DeviceArgs::Rm("ab12".into())));
        let Command::Init(init) =
            run("-c x.json init --forward-to=+15552223333 --learn-intercom --learn-timeout 2m")
        else {
            panic!("not init")
        };
        assert_eq!(init.forward_to, Some(vec![phone("+15552223333")]));
        assert!(init.learn && init.learn_timeout == Some(Duration::from_secs(120)) && !init.force);
        let Command::Schedule(ScheduleArgs::Add(add)) =
            run("schedule add mon-fri 08:00–18:00 --label deliveries")
        else {
            panic!("not schedule add")
        };
        assert_eq!(
            (add.days.as_deref(), add.from.as_deref(), add.to.as_deref(), add.label.as_deref()),
            (Some("mon-fri"), Some("08:00"), Some("18:00"), Some("deliveries"))
        );
        assert_eq!(run("schedule list"), Command::Schedule(ScheduleArgs::List));
        assert_eq!(run("schedule pause ab12"), Command::Schedule(ScheduleArgs::Pause("ab12".into())));
        assert_eq!(run("schedule resume ab12"), Command::Schedule(ScheduleArgs::Resume("ab12".into())));
        assert_eq!(run("schedule rm ab12"), Command::Schedule(ScheduleArgs::Rm("ab12".into())));
    }

    #[test]
    fn refuses_bad_arguments_in_the_terms_they_were_typed() {
        for bad in [
            "",
            "fly",
            "open 1h 2h",
            "open 90s",
            "open soon",
            "open --once=yes",
            "close --once",
            "simulate",
            "simulate --from 5558889999",
            "status --from +1555",
            "serve --config",
            "serve --verbose",
            "doctor --dry-run",
            "code",
            "code rm",
            "code rm ../x",
            "code list --uses 2",
            "open --label x",
            "code add --valid",
            "code add --uses two",
            "code rm a b",
            "pair",
            "pair a b",
            "devices x",
            "devices rm",
            "twilio-setup --dry-run=yes",
            "open -x",
            "init --forward-to",
            "init --from x",
            "init x",
            "init --intercom-number 5558889999",
            "schedule",
            "schedule add mon",
            "schedule add mon 0800",
            "schedule rm",
            "schedule add mon 08:00-09:00 --uses 2",
            "schedule add weekdays 8-18",
            "help opne",
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
        let says = |s: &str| args(s).unwrap_err().0;
        assert_eq!(
            says("status --from +1555"),
            "`intercom status` has no option --from; see `intercom status --help`"
        );
        assert_eq!(
            says("code add --lable x"),
            "`intercom code add` has no option --lable; did you mean --label?"
        );
        assert_eq!(says("code"), "`intercom code` needs one of: add, list, rm");
        assert_eq!(says("opne"), "unknown command `opne`; did you mean `open`?");
        assert_eq!(says("help opne"), "unknown command `opne`; did you mean `open`?");
        assert_eq!(says("code ad"), "unknown command `code ad`; did you mean `code add`?");
        assert_eq!(says("fly"), "unknown command `fly`; `intercom --help` lists them");
        assert_eq!(
            says("open 2x"),
            "\"2x\" is not a length of time: write 90m, 2h, 1h30, 2 hours or 90 (minutes)"
        );
        assert_eq!(says("code add --valid 2w"), "--valid: from 1m to 7d, like 4h or 2d");
        assert_eq!(says("code add --uses 21"), "--uses: from 1 to 20");
        let long = format!("code add --label {}", "x".repeat(41));
        assert!(says(&long).starts_with("--label: 1 to 40 printable characters"), "{}", says(&long));
        assert!(
            says("schedule add weekdays 8-18").starts_with("time \"8\": use HH:MM"),
            "{}",
            says("schedule add weekdays 8-18")
        );
        assert!(says("schedule add mon 08:00-08:00").contains("the same time"));
        assert_eq!(says("code add --uses two"), "--uses: \"two\" is not a whole number");
        assert!(says("init --intercom-number 5558889999").starts_with("--intercom-number: "));
        assert_eq!(says("code rm ../x"), "\"../x\" is not the code's ID (see `intercom code list`)");
        assert!(says("schedule add mon 0800").contains("time range"));
    }

    /// The flags a command's help names, its parser takes (and no other: `next` refuses
    /// them); the plain arguments its usage line requires are given.
    #[test]
    fn every_flag_the_help_names_is_parsed() {
        let sample = |word: &str| match word {
            "ID" => "ab12",
            "NAME" => "Anna",
            "DAYS" => "mon",
            "FROM-TO" => "08:00-09:00",
            "--label" | "--entrance" => "x",
            "--valid" | "--learn-timeout" => "1h",
            "--uses" => "2",
            "--from" | "--twilio-number" | "--intercom-number" | "--forward-to" => "+15552223333",
            "--account-sid" => "AC0123456789abcdef0123456789abcdef",
            "--api-key-sid" => "SK0123456789abcdef0123456789abcdef",
            "--auth-token" | "--api-key-secret" => "0123456789abcdef0123456789abcdef",
            "--public-url" => "https://door.example.net",
            _ => "",
        };
        let mut checked = 0;
        for spec in &COMMANDS {
            let words: Vec<&str> = spec.usage.split(' ').collect();
            let required: Vec<&str> = words
                .iter()
                .enumerate()
                .filter(|(i, w)| {
                    w.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') && !words[i - 1].starts_with("--")
                })
                .map(|(_, w)| sample(w))
                .collect();
            let base = format!("{} {}", spec.name(), required.join(" "));
            for flag in crate::cli::reader::flags([spec.usage, spec.about]) {
                let typed = format!("{base} --{flag} {}", sample(&format!("--{flag}")));
                assert!(
                    matches!(args(&typed), Ok(Invocation::Run(..) | Invocation::Serve(_))),
                    "{typed}: {:?}",
                    args(&typed)
                );
                checked += 1;
            }
            let typed = format!("{base} --no-such-flag");
            assert!(args(&typed).unwrap_err().0.contains("has no option --no-such-flag"), "{typed}");
        }
        assert!(checked >= 20, "{checked}");
    }

    #[test]
    fn every_command_has_its_own_help_and_a_one_line_summary() {
        for spec in &COMMANDS {
            let typed = format!("{} --help", spec.name());
            let Ok(Invocation::Help(text)) = args(&typed) else { panic!("{typed}") };
            assert!(text.starts_with(&format!("usage: intercom {}", spec.usage)), "{text}");
            assert_eq!(args(&format!("help {}", spec.name())).unwrap(), Invocation::Help(text));
            let summary = spec.about.lines().next().unwrap();
            assert!(summary.ends_with('.') && summary.len() <= 74, "{summary}");
            assert!(overview().contains(&format!("intercom {}\n      {summary}\n", spec.usage)));
        }
        let Ok(Invocation::Help(open)) = args("open --help") else { panic!() };
        assert!(open.contains("90m") && open.contains("1w"), "{open}");
        assert_eq!(args("--help").unwrap(), Invocation::Help(overview()));
        assert_eq!(args("help").unwrap(), Invocation::Help(overview()));
        assert_eq!(args("open 2x --help"), args("help open"));
        let Ok(Invocation::Help(group)) = args("help schedule") else { panic!() };
        assert_eq!(args("schedule --help").unwrap(), Invocation::Help(group.clone()));
        for command in ["add", "list", "rm", "pause", "resume"] {
            assert!(group.contains(&format!("usage: intercom schedule {command}")), "{group}");
        }
        let Ok(Invocation::Help(devices)) = args("devices --help") else { panic!() };
        assert!(
            devices.contains("usage: intercom devices\n")
                && devices.contains("usage: intercom devices rm ID")
        );
    }
}
