//! `cli/`: the commands a person types, all but `serve` (which `main` runs). The command
//! line is typed: each command's arguments are checked and converted as they are read,
//! and its help comes from the same definition as its parser. Commands that act on the
//! running server go through its control API, reading each answer as its `model::api`
//! type, so the server stays the only writer of the state. Also here: the guided first
//! setup (`init`), `doctor`, and printing that ends quietly on a closed pipe.
//!
//! Uses: `twilio`, `store`, `rules`, `system`, `config`, `model`, `util`.

pub mod args;
pub mod client;
pub mod codes;
pub mod commands;
pub mod devices;
pub mod doctor;
pub mod files;
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

use crate::cli::client::{Client, CLIENT_TIMEOUT};
use crate::cli::files::load;
use crate::cli::out::say_raw;

/// Runs a command other than `serve`; prints its answer, or one line on stderr.
pub fn run(command: Command, path: &Path) -> ExitCode {
    // The commands that talk to the server need the control token; the secrets file
    // (root's) is read for it only when the config does not hold it.
    let for_api =
        || load(path, false).and_then(|c| if c.control.token.is_some() { Ok(c) } else { load(path, true) });
    let api = || for_api().and_then(|c| Ok((Client::new(&c, CLIENT_TIMEOUT)?, c)));
    let filled = |secrets| load(path, secrets).and_then(|c| files::filled(path, c));
    let result: Result<(), Box<dyn Error>> = match command {
        // Doctor reports a bad config as one of its checks, and its verdict as the status.
        Command::Doctor => return if doctor::run(path) { ExitCode::SUCCESS } else { ExitCode::FAILURE },
        Command::Open(request) => api().and_then(|(api, c)| commands::open(&api, &c, &request)),
        Command::Close => api().and_then(|(api, _)| commands::close(&api, path)),
        Command::Status => {
            api().and_then(|(api, _)| api.get("/api/status")).map(|s| commands::print_status(&s))
        }
        Command::LetIn => api().and_then(|(api, _)| commands::let_in(&api)),
        Command::Url => load(path, false).map(|c| commands::url(&c, path)),
        Command::CheckConfig => filled(true).map(|c| say_raw!("{}", commands::summary(&c))),
        // Init writes the config, so it does not load one.
        Command::Init(args) => init::run(path, *args),
        Command::Simulate(from) => load(path, false).and_then(|c| simulate::run(&c, from.as_str())),
        Command::Code(args) => api().and_then(|(api, _)| codes::run(args, &api)),
        Command::Schedule(args) => api().and_then(|(api, c)| schedule::run(args, &api, &c)),
        Command::Devices(args) => api().and_then(|(api, c)| devices::run(args, &api, &c)),
        Command::TwilioSetup { dry_run } => filled(true).and_then(|c| setup::twilio_setup(&c, dry_run)),
        Command::FallbackTwiml => {
            filled(false).and_then(|c| setup::fallback_twiml(&c)).map(|t| say_raw!("{t}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intercom: {e}");
            ExitCode::FAILURE
        }
    }
}
