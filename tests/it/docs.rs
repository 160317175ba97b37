//! The docs cannot drift from the program: every `intercom <command>` they show is a
//! command, every config key they show is one the parser accepts (and every key it accepts
//! is in docs/config.md), their JSON examples use no unknown key, the man page covers
//! every command, and the README stays one screen to a working Pi. The program is asked
//! from outside, as a reader would: `intercom --help` for the commands, and
//! `intercom check-config` for the keys.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::TempDir;

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
fn commands_in(code: &str) -> Vec<String> {
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
                found.push(word.to_string());
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
    let known = usage_commands();
    assert!(known.contains(&"doctor".to_string()) && known.contains(&"code".to_string()), "{known:?}");
    let mut checked = 0;
    for (path, text) in documents() {
        let (blocks, spans) = code(&text);
        let pieces = blocks.into_iter().map(|(_, b)| b).chain(spans);
        for command in pieces.flat_map(|c| commands_in(&c)) {
            assert!(known.contains(&command), "{path} shows `intercom {command}`, which is not a command");
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

#[test]
fn the_man_page_covers_every_command() {
    let man = fs::read_to_string(root().join("docs/intercom.1")).unwrap().replace("\\-", "-");
    for command in usage_commands() {
        let shown = man.contains(&format!(".B intercom {command}"))
            || man.contains(&format!(".BR intercom \" \" {command}"))
            || man
                .lines()
                .any(|l| l.starts_with(".BR intercom") && l.split(['|', ' ']).any(|w| w == command));
        assert!(shown, "docs/intercom.1 has no synopsis line for `intercom {command}`");
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
