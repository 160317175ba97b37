//! The docs cannot drift from the program: every `intercom <command>` they show is a
//! command, every config key they show is one the parser accepts (and every key it accepts
//! is in docs/config.md), their JSON examples use no unknown key, the man page covers
//! every command, and the README stays one screen to a working Pi.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use intercom::cli::args::COMMANDS;
use intercom::config::{self, KEYS};

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

/// The commands the parser knows: the first word of each (`code add` is `code`).
fn usage_commands() -> Vec<String> {
    let mut names: Vec<String> =
        COMMANDS.iter().map(|s| s.name.split(' ').next().unwrap().to_string()).collect();
    names.dedup();
    names
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
    for spec in COMMANDS {
        let o = Command::new(env!("CARGO_BIN_EXE_intercom"))
            .args(spec.name.split(' '))
            .arg("--help")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && out.contains(&format!("usage: intercom {}", spec.usage)),
            "{}: {out}",
            spec.name
        );
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
    let sections = ["webhook", "control", "twilio", "notify", "limits"];
    let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    (sections.contains(&section) && plain).then_some(span)
}

#[test]
fn every_config_key_the_docs_show_is_accepted_and_every_key_is_documented() {
    let known: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
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
    for key in known {
        assert!(reference.contains(&format!("`{key}")), "docs/config.md does not document `{key}`");
    }
}

#[test]
fn json_examples_in_the_docs_use_only_known_keys() {
    let mut checked = 0;
    for (path, text) in documents() {
        for (lang, block) in code(&text).0 {
            if lang != "json" {
                continue;
            }
            // A fragment of a config (`"notify": {…}, "twilio": {…}`) is read as the object it belongs in.
            let text =
                if block.trim_start().starts_with('{') { block.clone() } else { format!("{{{block}}}") };
            if let Err(e) = config::parse(&text, |_| None) {
                assert!(
                    !e.0.contains("unknown key"),
                    "{path}: a JSON example uses an unknown key: {e}\n{block}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 1);
    // The shipped configs themselves parse.
    for name in ["configs/dev.json", "configs/production.json"] {
        config::parse(&fs::read_to_string(root().join(name)).unwrap(), |_| None).unwrap();
    }
}
