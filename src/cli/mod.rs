//! `cli/`: the commands a person types, all but `serve`. `mod.rs` (this file) runs the
//! command that `args.rs` parsed; `commands.rs` holds the small ones; `client.rs` talks to
//! the running server's control API (the server stays the only writer of the state);
//! `codes.rs` is `intercom code`; `devices.rs` is `intercom pair` and `intercom devices`;
//! `setup.rs` is `twilio-setup` and the fallback TwiML; `doctor.rs` checks the whole chain
//! and says what to fix; `init.rs` is the guided first setup that writes the config and
//! the secrets file (`init_ask.rs`: its questions); `out.rs` prints, quietly ending on a
//! closed pipe; `schedule.rs` is `intercom schedule`; `simulate.rs` is `intercom simulate`.
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
pub mod schedule;
pub mod setup;
pub mod simulate;

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

pub use args::{parse_args, Command, Invocation, UsageError};

use crate::cli::out::say_raw;
use crate::config;

/// Runs a command other than `serve`; prints its answer, or one line on stderr.
pub fn run(command: Command, config_path: &Path) -> ExitCode {
    // Under systemd the service gets its secrets from intercom.env; an admin's command
    // reads them from there too.
    let config = || config::load_with_env_file(config_path);
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
        Command::Open { duration, once } => {
            config().map_err(Into::into).and_then(|c| commands::open(&c, duration.as_deref(), once))
        }
        Command::Close => config().map_err(Into::into).and_then(|c| commands::close(&c)),
        Command::Status => config().map_err(Into::into).and_then(|c| commands::status(&c)),
        Command::LetIn => config().map_err(Into::into).and_then(|c| commands::let_in(&c)),
        Command::Url => config().map_err(Into::into).and_then(|c| commands::url(&c)),
        Command::CheckConfig => filled().map(|c| commands::check_config(&c)),
        // Init writes the config, so it does not load one.
        Command::Init(args) => init::run(config_path, *args),
        Command::Simulate { from } => config().map(|c| simulate::run(&c, &from)).map_err(Into::into),
        Command::Code(args) => config().map_err(Into::into).and_then(|c| {
            let client = client::Client::new(&c)?;
            codes::run(args, &|method, path, body| client.call(method, path, body))
        }),
        Command::Schedule(args) => config().map_err(Into::into).and_then(|c| {
            let client = client::Client::new(&c)?;
            schedule::run(args, &|method, path, body| client.call(method, path, body))
        }),
        Command::Devices(args) => config().map_err(Into::into).and_then(|c| {
            let client = client::Client::new(&c)?;
            let base = format!("http://{}", client::display_addr(commands::lan_address(c.control.listen)));
            devices::run(args, &|method, path, body| client.call(method, path, body), &base)
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
