//! The `intercom` binary: see `lib.rs` for the architecture. Parses the command line,
//! sets up logging and hands over to `serve` or to the command; nothing else.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use intercom::cli::{self, Invocation, UsageError};
use intercom::{config, daemon::server};

fn main() -> ExitCode {
    match cli::parse_args(std::env::args_os().skip(1)) {
        Err(UsageError(msg)) => {
            eprintln!("intercom: {msg}");
            ExitCode::from(2)
        }
        Ok(Invocation::Help(text)) => {
            cli::out::write_stdout(format_args!("intercom {}\n\n{text}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        Ok(Invocation::Version) => {
            cli::out::write_stdout(format_args!("intercom {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        Ok(Invocation::Serve(path)) => {
            let loaded = config::load(&path).map_err(Into::into).and_then(|c| cli::files::filled(&path, c));
            let config = match loaded {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("intercom: {e}");
                    return ExitCode::FAILURE;
                }
            };
            init_logging(config.log_level);
            match server::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    eprintln!("intercom: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(Invocation::Run(command, config)) => {
            init_logging(log::LevelFilter::Warn);
            cli::run(command, &config)
        }
    }
}

/// Other crates may log what passes through them at debug and trace (an HTTP library's
/// hex dump would hold Basic credentials, the control token, guest codes), so they never
/// log below this, whatever the config or `RUST_LOG` ask for. Their warnings and errors
/// still show.
const OTHER_CRATES_MAX_LEVEL: log::LevelFilter = log::LevelFilter::Warn;

/// Level from the config, overridden by `RUST_LOG` (a plain level, as simple_logger reads
/// it); it applies to this crate only. Lines carry no time: the journal (or syslog on
/// OpenWrt) stamps each line itself, and a stamp of ours would cost a date crate.
fn init_logging(level: log::LevelFilter) {
    let level = std::env::var("RUST_LOG").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(level);
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level.min(OTHER_CRATES_MAX_LEVEL))
        .with_module_level(env!("CARGO_CRATE_NAME"), level)
        .init();
}
