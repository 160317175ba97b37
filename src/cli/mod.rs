//! `cli/`: the commands a person types, all but `serve` (which `main` runs). The command
//! line is typed: each command's arguments are checked and converted as they are read,
//! and its help comes from the same definition as its parser. Commands that act on the
//! running server go through its control API, reading each answer as its `model::api`
//! type, so the server stays the only writer of the state. Also here: the guided first
//! setup (`init`), `doctor`, and printing that ends quietly on a closed pipe.
//!
//! Uses: `web`, `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod args;
pub mod client;
pub mod codes;
pub mod commands;
pub mod devices;
pub mod doctor;
pub mod init;
mod init_ask;
pub mod out;
pub mod reader;
pub mod schedule;
pub mod setup;
pub mod simulate;

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

pub use args::{parse_args, Command, Invocation};
pub use reader::UsageError;

use crate::cli::client::Client;
use crate::cli::out::say_raw;
use crate::config;

/// Runs a command other than `serve`; prints its answer, or one line on stderr.
pub fn run(command: Command, config_path: &Path) -> ExitCode {
    // Under systemd the service gets its secrets from intercom.env; an admin's command
    // reads them from there too.
    let config = || config::load_with_env_file(config_path).map_err(Box::<dyn Error>::from);
    // An untouched template passes every other check while every real call would fail:
    // the commands that act on the config's values refuse it, naming each key.
    let filled = || -> Result<config::Config, Box<dyn Error>> {
        let c = config()?;
        let unfilled = config::unfilled_placeholders(&c);
        if unfilled.is_empty() {
            return Ok(c);
        }
        let lines: Vec<String> = unfilled.iter().map(|e| format!("{}: {e}", config_path.display())).collect();
        Err(lines.join("\nintercom: ").into())
    };
    let result: Result<(), Box<dyn Error>> = match command {
        // Doctor reports a bad config as one of its checks, and its verdict as the status.
        Command::Doctor => {
            return if doctor::run(config_path) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Command::Open { duration, once } => config().and_then(|c| commands::open(&c, duration, once)),
        Command::Close => config().and_then(|c| commands::close(&c)),
        Command::Status => config().and_then(|c| commands::status(&c)),
        Command::LetIn => config().and_then(|c| commands::let_in(&c)),
        Command::Url => config().and_then(|c| commands::url(&c)),
        Command::CheckConfig => filled().map(|c| commands::check_config(&c)),
        // Init writes the config, so it does not load one.
        Command::Init(args) => init::run(config_path, *args),
        Command::Simulate { from } => config().map(|c| simulate::run(&c, from.as_str())),
        Command::Code(args) => config().and_then(|c| codes::run(args, &Client::new(&c)?)),
        Command::Schedule(args) => config().and_then(|c| schedule::run(args, &Client::new(&c)?)),
        Command::Devices(args) => config().and_then(|c| {
            let base = format!("http://{}", client::display_addr(commands::lan_address(c.control.listen)));
            devices::run(args, &Client::new(&c)?, &base)
        }),
        Command::TwilioSetup { dry_run } => filled().and_then(|c| setup::twilio_setup(&c, dry_run)),
        Command::FallbackTwiml => filled().and_then(|c| {
            say_raw!("{}", setup::fallback_twiml(&c)?);
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intercom: {e}");
            ExitCode::FAILURE
        }
    }
}
