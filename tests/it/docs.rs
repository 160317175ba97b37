//! The docs cannot drift from the program: every `intercom <command>` they show is a
//! command and every option they give it is one it takes; every config key they show is
//! one the parser accepts (and every key it accepts is in docs/config.md, with the default
//! the program uses); their JSON examples use no unknown key; every example answer of the
//! control API decodes into the API's types and names every field the server sends; no
//! document shows a URL with the control token in it; the man page has a section with an
//! example for every command; and the README stays one screen to a working Pi. The program
//! is asked from outside, as a reader would: `intercom --help` for the commands,
//! `intercom check-config` for the keys, and the running server for the answers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::harness::{base_config, Server, TempDir, INTERCOM};
use intercom::model::api::{
    CodeBody, CodesBody, DevicesBody, ErrorBody, EventsBody, PairingBody, ScheduleBody, SchedulesBody,
    StatusBody,
};

/// The issue's bound: the README is a quick start, not a design notebook.
const README_MAX_LINES: usize = 250;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md, with their paths for messages.
fn documents() -> Vec<(String, String)> {
    let mut paths = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths.iter().map(|p| (rel(p), fs::read_to_string(p).unwrap())).collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

/// The code in a Markdown text: fenced blocks (with their language) and inline spans.
fn code(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let (mut blocks, mut spans) = (Vec::new(), Vec::new());
    let mut fence: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            match fence.take() {
                Some(block) => blocks.push(block),
                None => fence = Some((lang.trim().to_string(), String::new())),
            }
            continue;
        }
        if let Some((_, body)) = &mut fence {
            body.push_str(line);
            body.push('\n');
            continue;
        }
        spans.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
    }
    (blocks, spans)
}

fn intercom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(args)
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .output()
        .unwrap()
}

/// The commands `intercom --help` lists, each with its full name (`code add`): the
/// lowercase words of its usage line before the first argument or option.
fn command_names() -> Vec<String> {
    let o = intercom(&["--help"]);
    assert!(o.status.success());
    let mut names = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let Some(usage) = line.trim_start().strip_prefix("intercom ") else { continue };
        let words: Vec<&str> = usage
            .split_whitespace()
            .take_while(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') && !w.starts_with('-'))
            .collect();
        if !words.is_empty() && !names.contains(&words.join(" ")) {
            names.push(words.join(" "));
        }
    }
    assert!(names.len() >= 10, "--help lists only {names:?}");
    names
}

/// The first word of each command (`code add` is `code`), as the docs write them.
fn usage_commands() -> Vec<String> {
    let mut first: Vec<String> =
        command_names().iter().map(|n| n.split(' ').next().unwrap().to_string()).collect();
    first.dedup();
    first
}

/// `intercom check-config` on a config text: its output, stdout and stderr together.
fn check_config(dir: &Path, text: &str) -> (bool, String) {
    let path = dir.join("intercom.json");
    fs::write(&path, text).unwrap();
    let o = intercom(&["check-config", "--config", path.to_str().unwrap()]);
    (
        o.status.success(),
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
    )
}

const SECTIONS: [&str; 8] =
    ["webhook", "control", "twilio", "notify", "notify.ntfy", "mqtt", "limits", "ring"];

/// The keys the parser accepts, from the list its error gives for an unknown key.
fn accepted_keys() -> Vec<String> {
    let dir = TempDir::new("docs-keys");
    let mut keys = Vec::new();
    for section in [""].into_iter().chain(SECTIONS) {
        // `notify.ntfy` is a section inside a section.
        let unknown = r#"{"no_such_key": 1}"#.to_string();
        let text = section
            .split('.')
            .filter(|s| !s.is_empty())
            .rev()
            .fold(unknown, |inner, s| format!(r#"{{"{s}": {inner}}}"#));
        let (ok, out) = check_config(dir.path(), &text);
        assert!(!ok, "{out}");
        let list = out.split("(known here: ").nth(1).unwrap_or_else(|| panic!("{out}"));
        let list = list.split(')').next().unwrap();
        let prefix = if section.is_empty() { String::new() } else { format!("{section}.") };
        keys.extend(list.split(", ").map(|k| format!("{prefix}{}", k.trim())));
    }
    keys
}

/// `intercom WORD` in a piece of code where `intercom` is run (first word, or after
/// `sudo` or a shell operator) and WORD looks like a command: not a host name such as
/// `intercom.local`, a path, an option, or a quoted message ("another intercom process").
/// With it, the options (`--once`) written after it, up to a comment or the next command.
fn commands_in(code: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    for line in code.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, pair) in words.windows(2).enumerate() {
            let program = pair[0].trim_start_matches(['`', '(', '$']);
            if program != "intercom" && !program.ends_with("bin/intercom") {
                continue;
            }
            let runs =
                i == 0 || ["sudo", "&&", "||", ";", "|", "$", "then", "do", "-n"].contains(&words[i - 1]);
            let word = pair[1].trim_end_matches(['`', '"', '\'', ')', ',', ';', ':']);
            let command_like = word.len() > 1
                && !word.starts_with('-')
                && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'-');
            if runs && command_like {
                let options = words[i + 2..]
                    .iter()
                    .take_while(|w| !w.starts_with('#') && !["&&", "||", ";", "|"].contains(w))
                    .filter_map(|w| w.strip_prefix("--"))
                    .map(|w| w.split(['=', '`', ')', ',']).next().unwrap())
                    .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
                    .map(|w| format!("--{w}"))
                    .collect();
                found.push((word.to_string(), options));
            }
        }
    }
    found
}

#[test]
fn the_readme_is_one_screen_to_a_working_pi() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= README_MAX_LINES, "README.md has {lines} lines");
    for must in ["make run", "make test", "## Quick start on a Pi", "intercom doctor", "intercom.env"] {
        assert!(readme.contains(must), "README.md lacks {must:?}");
    }
    // Every document the README links to exists.
    for link in readme.split("](").skip(1) {
        let target = link.split([')', '#']).next().unwrap();
        if !target.starts_with("http") && !target.is_empty() {
            assert!(root().join(target).exists(), "README.md links to missing {target}");
        }
    }
}

#[test]
fn every_command_the_docs_show_exists() {
    let mut known = usage_commands();
    assert!(known.contains(&"doctor".to_string()) && known.contains(&"code".to_string()), "{known:?}");
    // `intercom help COMMAND`, which the overview offers beside `--help`.
    if String::from_utf8_lossy(&intercom(&["--help"]).stdout).contains("help COMMAND") {
        known.push("help".into());
    }
    let mut checked = 0;
    for (path, text) in documents() {
        let (blocks, spans) = code(&text);
        let pieces = blocks.into_iter().map(|(_, b)| b).chain(spans);
        for (command, options) in pieces.flat_map(|c| commands_in(&c)) {
            assert!(known.contains(&command), "{path} shows `intercom {command}`, which is not a command");
            let help = String::from_utf8_lossy(&intercom(&["help", &command]).stdout).into_owned();
            for option in options.iter().filter(|o| *o != "--help") {
                assert!(
                    help.contains(option.as_str()),
                    "{path} shows `intercom {command} … {option}`, which it does not take:\n{help}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} commands found: is the scan broken?");
    // And each answers --help with its own usage.
    for name in command_names() {
        let mut args: Vec<&str> = name.split(' ').collect();
        args.push("--help");
        let o = intercom(&args);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success() && out.contains(&format!("usage: intercom {name}")), "{name}: {out}");
    }
}

/// The man page's sections (`.SS` headings, `\-` read as `-`) with the lines under each.
fn man_sections(man: &str) -> Vec<(String, Vec<&str>)> {
    let mut sections: Vec<(String, Vec<&str>)> = Vec::new();
    for line in man.lines() {
        if let Some(heading) = line.strip_prefix(".SS ") {
            sections.push((heading.trim().trim_matches('"').replace("\\-", "-"), Vec::new()));
        } else if line.starts_with(".SH ") {
            sections.push((String::new(), Vec::new()));
        } else if let Some((_, lines)) = sections.last_mut() {
            lines.push(line);
        }
    }
    sections.retain(|(heading, _)| !heading.is_empty());
    sections
}

/// Each command has a section of its own in the man page, headed `intercom NAME` as
/// `--help` lists it, holding at least one example (`.EX` … `.EE`) that runs it; and each
/// such section is a command.
#[test]
fn the_man_page_has_a_section_with_an_example_for_every_command() {
    let man = fs::read_to_string(root().join("docs/intercom.1")).unwrap();
    let sections = man_sections(&man);
    let names = command_names();
    for name in &names {
        let heading = format!("intercom {name}");
        let Some((_, lines)) = sections.iter().find(|(h, _)| *h == heading) else {
            panic!("docs/intercom.1 has no section `.SS {heading}`")
        };
        let mut in_example = false;
        let mut examples = 0;
        for line in lines {
            match *line {
                ".EX" => in_example = true,
                ".EE" => in_example = false,
                l if in_example => {
                    let l = l.replace("\\-", "-");
                    let runs = l.split(" #").next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
                    if (runs.clone() + " ").contains(&format!("{heading} ")) {
                        examples += 1;
                    }
                    // What an example runs must work as typed: each option is the command's.
                    for (command, options) in commands_in(runs.trim_start_matches("$ ")) {
                        let help =
                            String::from_utf8_lossy(&intercom(&["help", &command]).stdout).into_owned();
                        for option in &options {
                            assert!(
                                help.contains(option.as_str()),
                                "docs/intercom.1: `{l}`: `intercom {command}` takes no {option}"
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        assert!(
            examples > 0,
            "docs/intercom.1: the section `{heading}` has no example (.EX … .EE) running it"
        );
    }
    for (heading, _) in &sections {
        if let Some(name) = heading.strip_prefix("intercom ") {
            assert!(
                names.iter().any(|n| n == name),
                "docs/intercom.1 has a section for `{heading}`, which is not a command"
            );
        }
    }
}

/// The control token must not sit in a URL (browsers keep their history on disk; the page
/// loses it on a reload): no document or installer shows one, whichever way it is written.
#[test]
fn no_document_shows_a_url_with_the_control_token() {
    let mut texts = documents();
    for path in [
        "SECURITY.md",
        "docs/intercom.1",
        "cross/deploy.sh",
        "cross/remote-install.sh",
        "packaging/debian/postinst",
    ] {
        texts.push((path.to_string(), fs::read_to_string(root().join(path)).unwrap()));
    }
    for (path, text) in texts {
        for (i, line) in text.lines().enumerate() {
            assert!(!line.contains("#t="), "{path}:{}: a URL with the control token: {line}", i + 1);
        }
    }
}

/// One example answer of the control API in the docs: the `curl` that asks (method, path
/// and body as the reader would send them) and the `# …` lines under it that show the
/// answer, `# 201 {…}` with its status.
struct Example {
    at: String,
    method: String,
    path: String,
    body: String,
    status: Option<u16>,
    answer: Value,
}

/// A shell line's words, quotes removed; an unquoted `#` word starts a comment.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, in_word) = (Some(c), true),
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            (None, c) => (in_word, _) = (true, word.push(c)),
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The example answers in a document's code blocks.
fn examples(path: &str, text: &str) -> Vec<Example> {
    let mut found = Vec::new();
    for (_, block) in code(text).0 {
        let lines: Vec<&str> = block.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            let words = shell_words(line);
            if words.first().map(String::as_str) != Some("curl") {
                continue;
            }
            let answer: Vec<&str> =
                lines[i + 1..].iter().map_while(|l| l.strip_prefix('#')).map(str::trim).collect();
            let answer = answer.join("");
            let (status, json) = match answer.split_once(' ') {
                Some((code, rest)) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => {
                    (Some(code.parse().unwrap()), rest.trim())
                }
                _ => (None, answer.as_str()),
            };
            if !json.starts_with('{') {
                continue;
            }
            let at = format!("{path}: `{line}`");
            let answer: Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("{at}: the answer shown is not JSON ({e}): {json}"));
            let flag = |f: &str| words.iter().position(|w| w == f).map(|i| words[i + 1].clone());
            let body = flag("-d").unwrap_or_default();
            let method = flag("-X").unwrap_or_else(|| if body.is_empty() { "GET" } else { "POST" }.into());
            let url =
                words.iter().find(|w| w.starts_with("$C/")).unwrap_or_else(|| panic!("{at}: no $C/… URL"));
            let path = url.trim_start_matches("$C").to_string();
            found.push(Example { at, method, path, body, status, answer });
        }
    }
    found
}

/// The example through the API type of its route: what of it the type reads, written
/// back. An example the type cannot read fails here.
fn through_type(e: &Example) -> Value {
    fn via<T: DeserializeOwned + Serialize>(e: &Example) -> Value {
        let typed: T = serde_json::from_value(e.answer.clone())
            .unwrap_or_else(|err| panic!("{}: the answer shown does not decode: {err}", e.at));
        serde_json::to_value(typed).unwrap()
    }
    let route = e.path.split('?').next().unwrap();
    match (e.method.as_str(), route) {
        _ if e.status.is_some_and(|s| s >= 400) => via::<ErrorBody>(e),
        ("GET", "/api/status") | ("POST", "/api/open" | "/api/close") => via::<StatusBody>(e),
        ("GET", "/api/codes") => via::<CodesBody>(e),
        ("POST", "/api/codes") => via::<CodeBody>(e),
        ("GET", "/api/events") => via::<EventsBody>(e),
        ("GET", "/api/schedules") => via::<SchedulesBody>(e),
        ("POST", "/api/schedules") => via::<ScheduleBody>(e),
        ("GET", "/api/devices") => via::<DevicesBody>(e),
        ("POST", "/api/pairings") => via::<PairingBody>(e),
        _ => panic!("{}: which API type answers {} {route}? Add it to through_type", e.at, e.method),
    }
}

/// Where `shown` fails to name a field that `sent` has, recursively: an object must have
/// every key; each element of a list must name every field of one of `sent`'s elements
/// (of the same `event`, for history records). `None` when it names them all.
fn unnamed(shown: &Value, sent: &Value, at: &str) -> Option<String> {
    match (shown, sent) {
        (Value::Object(shown), Value::Object(sent)) => {
            sent.iter().find_map(|(key, value)| match shown.get(key) {
                None => Some(format!("{at}.{key}")),
                Some(v) => unnamed(v, value, &format!("{at}.{key}")),
            })
        }
        (Value::Array(shown), Value::Array(sent)) => shown.iter().find_map(|item| {
            let alike: Vec<&Value> = sent.iter().filter(|s| s.get("event") == item.get("event")).collect();
            let problems: Vec<String> =
                alike.iter().filter_map(|s| unnamed(item, s, &format!("{at}[]"))).collect();
            match (alike.len(), problems.len()) {
                (0, _) => Some(format!("{at}[]: nothing like {item} to compare with")),
                (n, p) if p == n => Some(problems[0].clone()),
                _ => None,
            }
        }),
        _ => None,
    }
}

/// Every example answer of the control API in the docs is an answer the server gives:
/// it decodes into the route's type in `model::api`, it has no field the type lacks, and
/// it names every field that the running server sends for the same request. The requests
/// are sent as the docs show them (the query aside: it only narrows a list, and each
/// element shown is compared with one of the server's of the same kind), in their order,
/// to a server that has seen an unlocked call and has a schedule open now.
#[test]
fn every_example_answer_is_what_the_server_sends() {
    let s = Server::start(base_config());
    assert_eq!(s.api("POST", "/api/open", r#"{"minutes": 5}"#).status, 200);
    assert!(s.ring(INTERCOM).body.contains("<Play"), "the window did not let the call in");
    assert_eq!(s.api("POST", "/api/close", "").status, 200);
    let all_day = r#"{"label": "deliveries", "days": "daily", "from": "00:00", "to": "24:00"}"#;
    assert_eq!(s.api("POST", "/api/schedules", all_day).status, 201);
    let mut checked = Vec::new();
    for (path, text) in documents() {
        for e in examples(&path, &text) {
            let typed = through_type(&e);
            if let Some(field) = unnamed(&typed, &e.answer, "") {
                panic!("{}: the answer shows `{field}`, which the API type does not have (or a null it never sends)", e.at);
            }
            let reply = s.api(&e.method, e.path.split('?').next().unwrap(), &e.body);
            if let Some(status) = e.status {
                assert_eq!(reply.status, status, "{}: {}", e.at, reply.body);
            }
            let sent = reply.json();
            if let Some(field) = unnamed(&e.answer, &sent, "") {
                panic!("{}: the answer shown lacks `{field}`, which the server sends: {sent}", e.at);
            }
            checked.push(e.path);
        }
    }
    for route in ["/api/status", "/api/open", "/api/codes", "/api/events"] {
        assert!(
            checked.iter().any(|p| p.starts_with(route)),
            "no example answer of {route} found in {checked:?}"
        );
    }
}

/// A dotted key (`twilio.number`) of one of the config's sections.
fn section_keys(span: &str) -> Option<&str> {
    let (section, key) = span.split_once('.')?;
    let sections = SECTIONS;
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    (sections.contains(&section) && plain).then_some(span)
}

#[test]
fn every_config_key_the_docs_show_is_accepted_and_every_key_is_documented() {
    let accepted = accepted_keys();
    let known: Vec<&str> = accepted.iter().map(String::as_str).collect();
    assert!(known.contains(&"webhook.public_url") && known.contains(&"forward_to"), "{known:?}");
    for (path, text) in documents() {
        let (_, spans) = code(&text);
        for key in spans.iter().filter_map(|s| section_keys(s)) {
            assert!(known.contains(&key), "{path} shows config key `{key}`, which the parser refuses");
        }
    }
    let reference = fs::read_to_string(root().join("docs/config.md")).unwrap();
    // The reference table: its first column is the key.
    let mut rows = 0;
    for line in reference.lines().filter(|l| l.starts_with("| `")) {
        let key = line.split('`').nth(1).unwrap();
        assert!(known.contains(&key), "docs/config.md documents `{key}`, which the parser refuses");
        rows += 1;
    }
    assert!(rows > 20, "docs/config.md's table has {rows} rows");
    for key in &known {
        assert!(reference.contains(&format!("`{key}")), "docs/config.md does not document `{key}`");
    }
}

/// The defaults docs/config.md gives are the ones the program uses: `check-config` on a
/// config that sets (almost) nothing prints each value in effect. A default written as one
/// literal (`"2h"`, a list) is compared with what it prints for that key, where it prints a
/// value rather than a note in brackets.
#[test]
fn the_defaults_in_config_md_are_the_programs() {
    let dir = TempDir::new("docs-defaults");
    let path = dir.path().join("intercom.json");
    fs::write(&path, r#"{"webhook": {"public_url": "https://door.example.net"}}"#).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_intercom"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env_remove("INTERCOM_CONTROL_TOKEN")
        .env("INTERCOM_TWILIO_AUTH_TOKEN", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let shown: Vec<(&str, &str)> = out
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.trim().split_once(char::is_whitespace))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    let reference = fs::read_to_string(root().join("docs/config.md")).unwrap();
    let mut compared = 0;
    for row in reference.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (key, default) = (cells[1].split('`').nth(1).unwrap(), cells[2]);
        let Some(literal) = default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) else { continue };
        if literal.contains('`') {
            continue;
        }
        let expected = match serde_json::from_str::<Value>(literal) {
            Ok(Value::String(s)) => s,
            Ok(Value::Array(items)) => {
                items.iter().map(|i| i.as_str().unwrap_or_default()).collect::<Vec<_>>().join(", ")
            }
            _ => literal.to_string(),
        };
        let Some((_, value)) = shown.iter().find(|(k, _)| *k == key) else { continue };
        if value.starts_with('(') {
            continue;
        }
        assert_eq!(
            *value, expected,
            "docs/config.md gives `{key}` the default {default}; check-config says {value}"
        );
        compared += 1;
    }
    assert!(compared >= 8, "only {compared} defaults compared:\n{out}");
}

#[test]
fn json_examples_in_the_docs_use_only_known_keys() {
    let dir = TempDir::new("docs-json");
    let mut checked = 0;
    for (path, text) in documents() {
        for (lang, block) in code(&text).0 {
            if lang != "json" {
                continue;
            }
            // A fragment of a config (`"notify": {…}, "twilio": {…}`) is read as the object it belongs in.
            let text =
                if block.trim_start().starts_with('{') { block.clone() } else { format!("{{{block}}}") };
            let (_, out) = check_config(dir.path(), &text);
            assert!(
                !out.contains("unknown key"),
                "{path}: a JSON example uses an unknown key: {out}\n{block}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 1);
    // The dev config runs as is; the template is refused only for its placeholders.
    let (ok, out) = check_config(dir.path(), &fs::read_to_string(root().join("configs/dev.json")).unwrap());
    assert!(ok, "{out}");
    let (ok, out) =
        check_config(dir.path(), &fs::read_to_string(root().join("configs/production.json")).unwrap());
    assert!(!ok && out.lines().all(|l| l.contains("still the template's placeholder")), "{out}");
}
