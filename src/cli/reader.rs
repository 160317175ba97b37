//! Reading one command's arguments, for its parser in `args.rs`: `--config` wherever it
//! is, flags only where the command's help names them, and each value checked and
//! converted as it is read, its error naming the flag it was given to.

use std::path::PathBuf;

use lexopt::prelude::*;
use lexopt::Arg;

use crate::config;

/// A usage error: `main` prints it and exits 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl From<lexopt::Error> for UsageError {
    fn from(e: lexopt::Error) -> UsageError {
        UsageError(format!("{e}; see `intercom --help`"))
    }
}

/// A command's words: `code add` of `code add [--label TEXT] …`.
pub fn name(usage: &'static str) -> &'static str {
    let mut words = usage.splitn(3, ' ');
    let first = words.next().unwrap_or("");
    match words.next() {
        Some(w) if w.bytes().all(|b| b.is_ascii_lowercase()) => &usage[..first.len() + 1 + w.len()],
        _ => first,
    }
}

/// The flags a command's help names, without their dashes.
pub fn flags(help: [&'static str; 2]) -> impl Iterator<Item = &'static str> {
    help.into_iter()
        .flat_map(|h| h.split([' ', '\n']))
        .filter_map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-').strip_prefix("--"))
}

/// The arguments after a command's words.
pub struct Args {
    pub p: lexopt::Parser,
    /// The command's usage line and help: the flags it takes are the ones they name.
    pub help: [&'static str; 2],
    pub config: Option<PathBuf>,
    /// The flag read last, for its value's error.
    pub flag: &'static str,
}

impl Args {
    /// The command's next argument; `--config` is taken here.
    pub fn next_arg(&mut self) -> Result<Option<Arg<'static>>, UsageError> {
        loop {
            return Ok(Some(match self.p.next()? {
                None => return Ok(None),
                Some(Long("config") | Short('c')) => {
                    self.config = Some(self.p.value()?.into());
                    continue;
                }
                Some(Long(typed)) => {
                    let (help, known) = (self.help, flags(self.help).find(|f| *f == typed));
                    self.flag = known.ok_or_else(|| no_flag(help, typed))?;
                    Long(self.flag)
                }
                Some(Short(c)) => Short(c),
                Some(Value(v)) => Value(v),
            }));
        }
    }

    /// The value of the flag just read, checked and converted by `check` (what was typed
    /// to its value, or why it cannot be); the error names the flag.
    pub fn value<T>(&mut self, check: fn(&str) -> Result<T, String>) -> Result<T, UsageError> {
        check(&self.p.value()?.string()?).map_err(|why| UsageError(format!("--{}: {why}", self.flag)))
    }

    /// The value of the flag just read, as typed.
    pub fn text(&mut self) -> Result<String, UsageError> {
        self.value(|s| Ok(s.to_string()))
    }

    /// The command's one plain argument; `what` says what it is when it is missing.
    pub fn one(&mut self, what: &str) -> Result<String, UsageError> {
        match self.next_arg()? {
            Some(Value(v)) => Ok(v.string()?),
            Some(arg) => Err(self.unexpected(arg)),
            None => Err(self.missing(what)),
        }
    }

    /// The command's one plain argument, an id: letters and digits.
    pub fn id(&mut self, what: &str) -> Result<String, UsageError> {
        let id = self.one(what)?;
        match !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            true => Ok(id),
            false => Err(UsageError(format!("{id:?} is not {what}"))),
        }
    }

    pub fn unexpected(&self, arg: Arg) -> UsageError {
        UsageError(format!("{}; see `intercom {} --help`", arg.unexpected(), name(self.help[0])))
    }

    pub fn missing(&self, what: &str) -> UsageError {
        UsageError(format!("`intercom {}` needs {what}", name(self.help[0])))
    }

    /// Nothing may be left; the config file to use.
    pub fn finish(&mut self) -> Result<PathBuf, UsageError> {
        if let Some(arg) = self.next_arg()? {
            return Err(self.unexpected(arg));
        }
        Ok(self.config.take().unwrap_or_else(|| config::DEFAULT_CONFIG_PATH.into()))
    }
}

fn no_flag(help: [&'static str; 2], typed: &str) -> UsageError {
    let hint = match nearest(typed, flags(help)) {
        Some(f) => format!("did you mean --{f}?"),
        None => format!("see `intercom {} --help`", name(help[0])),
    };
    UsageError(format!("`intercom {}` has no option --{typed}; {hint}", name(help[0])))
}

/// The candidate nearest to what was typed, if it is near enough to be a typo: at most
/// two letters changed, and fewer than half of them.
pub fn nearest(typed: &str, candidates: impl Iterator<Item = &'static str>) -> Option<&'static str> {
    let distance = |b: &str| {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in typed.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let next = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
                (diagonal, row[j + 1]) = (row[j + 1], next);
            }
        }
        row[b.len()]
    };
    let (d, best) = candidates.map(|c| (distance(c), c)).min()?;
    (d <= 2 && 2 * d <= typed.chars().count()).then_some(best)
}
