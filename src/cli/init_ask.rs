//! `intercom init`'s questions: each answer's check (the config's own value checks, with
//! the form a person should type), and the prompt that asks again until an answer passes.

use std::error::Error;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::config::url::check_public_origin;
use crate::model::phone::PhoneNumber;

/// The answers, each checked.
pub(super) struct Answers {
    pub(super) account_sid: String,
    pub(super) auth_token: String,
    pub(super) api_key: Option<(String, String)>,
    pub(super) twilio_number: PhoneNumber,
    pub(super) forward_to: Vec<PhoneNumber>,
    pub(super) public_url: String,
    /// `None`: learn it from the next rejected call, or leave it unset.
    pub(super) intercom: Option<PhoneNumber>,
}

pub fn check_account_sid(s: &str) -> Result<String, String> {
    check_key(s, "AC", "an Account SID: AC and 32 letters or digits, from the Twilio console's Account info")
}

pub fn check_api_key_sid(s: &str) -> Result<String, String> {
    check_key(s, "SK", "an API key SID: SK and 32 letters or digits")
}

/// Twilio's Auth Tokens and API key secrets are 32 letters and digits.
pub fn check_secret(s: &str) -> Result<String, String> {
    check_key(s, "", "32 letters and digits, as the Twilio console shows it")
}

/// `prefix` and 32 letters or digits; a SID with `xxxx` in it is the template's placeholder.
fn check_key(s: &str, prefix: &str, what: &str) -> Result<String, String> {
    let s = s.trim();
    let ok =
        s.len() == prefix.len() + 32 && s.starts_with(prefix) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    match ok && (prefix.is_empty() || !s.contains("xxxx")) {
        true => Ok(s.to_string()),
        false => Err(format!("expected {what}")),
    }
}

/// A number in international form. One without a country code is not given one: the
/// person is asked for it (a guess would ring a stranger).
pub fn check_phone(s: &str) -> Result<PhoneNumber, String> {
    let s = s.trim();
    PhoneNumber::parse(s).map_err(|m| match s.starts_with('+') || s.starts_with("00") {
        true => format!("{s:?}: {m}, like +15552223333"),
        false => format!("{s:?} has no country code: write it with + and the country code, like +15552223333 or +447700900123"),
    })
}

/// Numbers separated by commas; a wrong one is named by its place.
pub fn check_phones(s: &str) -> Result<Vec<PhoneNumber>, String> {
    let list: Vec<_> = s.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if list.is_empty() {
        return Err("expected at least one number, like +15552223333 (several: comma-separated)".into());
    }
    let n = list.len();
    let place = |i: usize, why: String| if n == 1 { why } else { format!("number {} of {n}: {why}", i + 1) };
    list.iter().enumerate().map(|(i, p)| check_phone(p).map_err(|why| place(i, why))).collect()
}

pub fn check_url(s: &str) -> Result<String, String> {
    check_public_origin(s.trim()).map_err(|m| format!("the public URL {m}"))
}

/// A warning for a public URL that Twilio would reach without TLS, if it is one.
pub fn plain_http(url: &str) -> Option<String> {
    url.starts_with("http://").then(|| {
        format!("warning: {url} is plain http: the calls' details and signatures would cross the internet unencrypted; use the https address your tunnel serves")
    })
}

pub(super) fn ask_all() -> Result<Answers, Box<dyn Error>> {
    println!("intercom init: a few answers, each checked as you go (Ctrl-C stops; nothing is written until the end).");
    println!("From the Twilio console (console.twilio.com), Account info:");
    let account_sid = ask("Account SID (AC…): ", check_account_sid)?;
    let auth_token = ask_secret("Auth Token (not shown as you type): ", check_secret)?;
    let api_key_sid =
        ask("API key SID (SK…, optional: Enter to use the Auth Token): ", optional(check_api_key_sid))?;
    let with_secret = |sid| ask_secret("API key secret (not shown): ", check_secret).map(|s| (sid, s));
    let api_key = api_key_sid.map(with_secret).transpose()?;
    println!("Phone numbers with their country code: +1 555 222 3333, +44 7700 900123.");
    let twilio_number = ask("Your Twilio phone number: ", check_phone)?;
    let forward_to = ask("Your phone number(s) to ring (comma-separated): ", check_phones)?;
    let public_url = ask("The public URL your tunnel serves (https://host, no path): ", check_url)?;
    if let Some(warning) = plain_http(&public_url) {
        println!("  {warning}");
    }
    let intercom =
        ask("The number your intercom calls from, or Enter to learn it by ringing: ", optional(check_phone))?;
    Ok(Answers { account_sid, auth_token, api_key, twilio_number, forward_to, public_url, intercom })
}

/// `check` for an answer that may be left out (Enter).
fn optional<T>(check: fn(&str) -> Result<T, String>) -> impl Fn(&str) -> Result<Option<T>, String> {
    move |s| if s.trim().is_empty() { Ok(None) } else { check(s).map(Some) }
}

pub(super) fn yes_no(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "y" | "yes" => Ok(true),
        "n" | "no" => Ok(false),
        _ => Err("answer y or n".into()),
    }
}

/// Asks until an answer passes `check` (one line from stdin, after the question on
/// stdout); a wrong answer is explained and asked again.
pub(super) fn ask<T>(question: &str, check: impl Fn(&str) -> Result<T, String>) -> Result<T, Box<dyn Error>> {
    loop {
        print!("{question}");
        std::io::stdout().flush()?;
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line)? == 0 {
            return Err("no answer (input ended)".into());
        }
        match check(line.trim_end_matches(['\n', '\r'])) {
            Ok(v) => return Ok(v),
            Err(why) => println!("  {why}; try again."),
        }
    }
}

/// Like `ask`, with the terminal's echo off while typing (where `stty` works).
fn ask_secret<T>(question: &str, check: impl Fn(&str) -> Result<T, String>) -> Result<T, Box<dyn Error>> {
    // stty acts on its stdin, which it inherits: this terminal.
    let stty =
        |arg: &str| Command::new("stty").arg(arg).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    let hidden = stty("-echo");
    let answer = ask(question, |s| {
        if hidden {
            println!();
        }
        check(s)
    });
    if hidden {
        stty("echo");
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_as_typed() {
        assert!(check_account_sid("AC0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_account_sid("ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_err());
        assert!(check_account_sid("SK0123456789abcdef0123456789abcdef").is_err());
        assert!(check_api_key_sid(" SK0123456789abcdef0123456789abcdef ").is_ok());
        assert!(check_secret("0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_secret("short").is_err());
        assert_eq!(check_phones("+1 555 222 3333, +447700900123").unwrap().len(), 2);
        assert!(check_phones(" , ").is_err());
        assert!(check_phone("5552223333").unwrap_err().contains("has no country code"));
        assert!(check_phone("+1 555 CALL").unwrap_err().contains("like +15552223333"));
        let e = check_phones("+15552223333, 5551234").unwrap_err();
        assert!(e.starts_with("number 2 of 2: \"5551234\" has no country code"), "{e}");
        assert!(check_url("https://door.example.net/voice").unwrap_err().ends_with("remove /voice"));
        assert_eq!(check_url("https://door.example.net/").unwrap(), "https://door.example.net");
    }
}
