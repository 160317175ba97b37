//! What the commands print. Through these, writing to a closed pipe (`intercom --help |
//! head -1`) ends the program quietly with 0, as it does for other Unix tools, instead
//! of `println!`'s panic (exit 101): Rust ignores SIGPIPE, and setting it back would take
//! `unsafe` code.

use std::io::{self, Write};

/// Writes to stdout; on a closed pipe, exits 0 at once (the reader has what it wanted).
pub fn write_stdout(args: std::fmt::Arguments) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `println!` that exits quietly on a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::out::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that exits quietly on a closed pipe.
macro_rules! say_raw {
    ($($arg:tt)*) => { $crate::cli::out::write_stdout(format_args!($($arg)*)) };
}

pub(crate) use {say, say_raw};

/// What is left of a length, the one way every command says it: `2h left`, `23h 59m
/// left`, to the minute (rounded up, so a window opened for 2h shows 2h).
pub fn left(seconds: u64) -> String {
    format!("{} left", crate::util::time::human(std::time::Duration::from_secs(seconds.div_ceil(60) * 60)))
}
