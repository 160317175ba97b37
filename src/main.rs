//! The `intercom` binary: see `lib.rs` for the architecture.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use intercom::cli::{self, Command};
use intercom::{config, server};

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args = match cli::parse_args(&raw) {
        Ok(a) => a,
        Err(cli::UsageError(msg)) => {
            eprintln!("intercom: {msg}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match args.command {
        Command::Help => {
            println!("intercom {}\n\n{}", env!("CARGO_PKG_VERSION"), cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("intercom {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        // Doctor reports a bad config as one of its checks.
        Command::Doctor => {
            init_logging(log::LevelFilter::Warn);
            return if intercom::doctor::run(&args.config) { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        }
        // Init writes the config, so it does not load one.
        Command::Init(init) => {
            init_logging(log::LevelFilter::Warn);
            return match intercom::init::run(&args.config, init) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("intercom: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    let serving = args.command == Command::Serve;
    // Under systemd the service gets its secrets from intercom.env; an admin's command
    // reads them from there too.
    let loaded = if serving { config::load(&args.config) } else { config::load_with_env_file(&args.config) };
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("intercom: {e}");
            return ExitCode::FAILURE;
        }
    };
    // An untouched template passes every other check while every real call would fail.
    if matches!(
        args.command,
        Command::Serve | Command::CheckConfig | Command::TwilioSetup { .. } | Command::FallbackTwiml
    ) {
        let unfilled = config::unfilled_placeholders(&config);
        for e in &unfilled {
            eprintln!("intercom: {}: {e}", args.config.display());
        }
        if !unfilled.is_empty() {
            return ExitCode::FAILURE;
        }
    }
    init_logging(if serving { config.log_level } else { log::LevelFilter::Warn });
    let result = if serving { server::run(config) } else { cli::run(args.command, &config) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if serving {
                log::error!("{e}");
            }
            eprintln!("intercom: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Level from the config, overridden by `RUST_LOG`. Under systemd the journal stamps
/// each line itself, so ours would only be noise.
fn init_logging(level: log::LevelFilter) {
    let logger = simple_logger::SimpleLogger::new().with_level(level).env();
    let logger = if std::env::var_os("JOURNAL_STREAM").is_some() {
        logger.without_timestamps()
    } else {
        logger.with_utc_timestamps()
    };
    let _ = logger.init();
}
