//! The module layering of `src/` (see the `//!` comment in `src/lib.rs`): every module
//! has a layer, a module uses only modules of its own layer or below (the HTTP
//! infrastructure only the crate root), and no chain of uses comes back to where it
//! started. This reads the source as Rust tokens (so strings
//! and comments never count), finds every `crate::x` / `use crate::{x, ..}` /
//! `super::x` (and `intercom::x` in `main.rs`), skips `#[cfg(test)]` items (tests may
//! use anything), and fails naming the file and line of each offending use.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// Module → layer, lowest first; mirrors `src/lib.rs`. `lib` is the crate root's own
/// helpers (`lock`, `rfc3339`, `loggable`). A new module gets a line here.
const LAYERS: &[(&str, u8)] = &[
    ("lib", 0),
    ("ratelog", 0),
    // parsers: pure functions of their input
    ("form", 1),
    ("phone", 1),
    ("signature", 1),
    ("url", 1),
    ("retry_after", 1),
    ("local_time", 1),
    // and the TLS roots: reads the system's CA bundle; uses nothing of ours
    ("tls", 1),
    // vocabulary and config
    ("record", 2),
    ("config", 2),
    ("config_values", 2),
    // call rules: pure decisions and their rendering
    ("call", 3),
    ("twiml", 3),
    ("codes", 3),
    ("window", 3),
    // services: own state, files and threads
    ("state", 4),
    ("state_file", 4),
    ("token", 4),
    ("history", 4),
    ("storage", 4),
    ("boot", 4),
    ("notify", 4),
    ("twilio", 4),
    ("clock", 4),
    ("expiry", 4),
    ("watchdog", 4),
    ("codes_store", 4),
    // HTTP infrastructure, used by the listeners and the server
    ("http", 5),
    ("connections", 5),
    ("pool", 5),
    // listeners: the request handlers
    ("webhook", 6),
    ("control", 6),
    // the application: wiring and commands
    ("server", 7),
    ("cli", 7),
    ("client", 7),
    ("setup", 7),
    ("doctor", 7),
    ("init", 7),
    ("codes_cli", 7),
    ("main", 8),
];
const LAYER_NAMES: [&str; 9] = [
    "crate root",
    "parsers",
    "vocabulary and config",
    "call rules",
    "services",
    "HTTP infrastructure",
    "listeners",
    "application",
    "binary",
];

/// The HTTP infrastructure's layer: it uses only the crate root and itself, so it stays
/// free of the domain below it (see `src/lib.rs`).
const HTTP_LAYER: u8 = 5;

/// One use of another module: who, whom, where.
#[derive(Debug, Clone)]
struct Use {
    from: String,
    to: String,
    line: usize,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The modules (file stems) of `src/`.
fn modules(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Every use of another module in `src/`, outside `#[cfg(test)]` items.
fn uses(dir: &Path) -> Vec<Use> {
    let modules = modules(dir);
    let mut out = Vec::new();
    for module in &modules {
        let text = fs::read_to_string(dir.join(format!("{module}.rs"))).unwrap();
        let tokens: TokenStream = text.parse().unwrap_or_else(|e| panic!("src/{module}.rs: {e:?}"));
        // The binary reaches the library by its crate name.
        let root = if module == "main" { "intercom" } else { "crate" };
        let mut found = Vec::new();
        scan(tokens, root, 0, &mut found);
        for (to, line) in found {
            let to = if modules.contains(&to) { to } else { "lib".to_string() };
            if to != *module {
                out.push(Use { from: module.clone(), to, line });
            }
        }
    }
    out
}

/// Collects `(first path segment after the crate root, line)` for every path that
/// starts at the crate root. `depth` counts inline (non-test) `mod`s, so `super::`
/// that only climbs to the file's own module is not a use.
fn scan(tokens: TokenStream, root: &str, depth: usize, found: &mut Vec<(String, usize)>) {
    let t: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < t.len() {
        if is_cfg_test(&t, i) {
            i = skip_item(&t, i);
            continue;
        }
        match &t[i] {
            TokenTree::Ident(id) if id == "mod" => {
                if let (Some(TokenTree::Ident(_)), Some(TokenTree::Group(g))) = (t.get(i + 1), t.get(i + 2)) {
                    if g.delimiter() == Delimiter::Brace {
                        scan(g.stream(), root, depth + 1, found);
                        i += 3;
                        continue;
                    }
                }
            }
            TokenTree::Ident(id) if *id == root && !follows_path_sep(&t, i) && path_sep(&t, i + 1) => {
                targets(&t, i + 3, found);
            }
            TokenTree::Ident(id) if id == "super" && !follows_path_sep(&t, i) => {
                let mut j = i;
                let mut climbs = 0;
                while matches!(&t.get(j), Some(TokenTree::Ident(s)) if s == "super") && path_sep(&t, j + 1) {
                    climbs += 1;
                    j += 3;
                }
                if climbs > depth {
                    targets(&t, j, found);
                }
                i = j.max(i + 1);
                continue;
            }
            TokenTree::Group(g) => scan(g.stream(), root, depth, found),
            _ => {}
        }
        i += 1;
    }
}

/// What a path from the crate root names at `t[i]`: one module, or a `{a, b::c}` group.
fn targets(t: &[TokenTree], i: usize, found: &mut Vec<(String, usize)>) {
    match t.get(i) {
        Some(TokenTree::Ident(id)) => found.push((id.to_string(), id.span().start().line)),
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            let mut at_start = true;
            for tt in &inner {
                match tt {
                    TokenTree::Ident(id) if at_start => {
                        found.push((id.to_string(), id.span().start().line));
                        at_start = false;
                    }
                    TokenTree::Punct(p) if p.as_char() == ',' => at_start = true,
                    _ => at_start = false,
                }
            }
        }
        _ => {}
    }
}

/// `::` at `t[i]`, `t[i + 1]`.
fn path_sep(t: &[TokenTree], i: usize) -> bool {
    matches!((t.get(i), t.get(i + 1)), (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
        if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':')
}

/// Whether `t[i]` is preceded by `::` (then `crate` would be a field or path segment).
fn follows_path_sep(t: &[TokenTree], i: usize) -> bool {
    i >= 2 && path_sep(t, i - 2)
}

/// `#[cfg(test)]` at `t[i]`.
fn is_cfg_test(t: &[TokenTree], i: usize) -> bool {
    match (t.get(i), t.get(i + 1)) {
        (Some(TokenTree::Punct(p)), Some(TokenTree::Group(g))) if p.as_char() == '#' => {
            g.delimiter() == Delimiter::Bracket
                && g.stream().to_string().chars().filter(|c| !c.is_whitespace()).collect::<String>()
                    == "cfg(test)"
        }
        _ => false,
    }
}

/// The index after the item that the attribute at `t[i]` applies to: its other
/// attributes, then up to and including its `{ .. }` body or its `;`.
fn skip_item(t: &[TokenTree], mut i: usize) -> usize {
    while matches!(t.get(i), Some(TokenTree::Punct(p)) if p.as_char() == '#') {
        i += 2;
    }
    while i < t.len() {
        match &t[i] {
            TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => return i + 1,
            TokenTree::Punct(p) if p.as_char() == ';' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// A cycle in the graph, as the modules along it, if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, done, path) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|m| visit(m, edges, &mut done, &mut Vec::new()))
}

/// The violations in a set of uses: upward uses and a cycle.
fn violations(uses: &[Use]) -> Vec<String> {
    let mut bad = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in uses {
        edges.entry(u.from.clone()).or_default().insert(u.to.clone());
        let (Some(from), Some(to)) = (layer(&u.from), layer(&u.to)) else { continue };
        let why = if to > from {
            "a higher layer"
        } else if from == HTTP_LAYER && to != from && to != 0 {
            "but the HTTP infrastructure uses only the crate root"
        } else {
            continue;
        };
        bad.push(format!(
            "src/{}.rs:{}: {} ({}) uses {} ({}), {why}",
            u.from, u.line, u.from, LAYER_NAMES[from as usize], u.to, LAYER_NAMES[to as usize]
        ));
    }
    if let Some(cycle) = find_cycle(&edges) {
        bad.push(format!("module cycle: {}", cycle.join(" -> ")));
    }
    bad
}

#[test]
fn every_module_has_a_layer_and_is_described_in_lib_rs() {
    let dir = src_dir();
    let modules = modules(&dir);
    let unplaced: Vec<_> = modules.iter().filter(|m| layer(m).is_none()).collect();
    assert!(unplaced.is_empty(), "give these modules a layer in tests/it/layers.rs: {unplaced:?}");
    let gone: Vec<_> = LAYERS.iter().filter(|(m, _)| !modules.contains(*m)).collect();
    assert!(gone.is_empty(), "tests/it/layers.rs lists modules that no longer exist: {gone:?}");
    let lib = fs::read_to_string(dir.join("lib.rs")).unwrap();
    let undescribed: Vec<_> = modules.iter().filter(|m| !lib.contains(&format!("`{m}.rs`"))).collect();
    assert!(undescribed.is_empty(), "the architecture comment in src/lib.rs misses {undescribed:?}");
}

#[test]
fn modules_depend_one_way_down_the_layers() {
    let uses = uses(&src_dir());
    // The scan must see the real graph, or passing proves nothing.
    for (from, to) in [("webhook", "http"), ("config", "record"), ("notify", "lib"), ("main", "server")] {
        assert!(uses.iter().any(|u| u.from == from && u.to == to), "the scan missed {from} -> {to}");
    }
    let bad = violations(&uses);
    assert!(bad.is_empty(), "the module layering is broken (see src/lib.rs):\n{}", bad.join("\n"));
}

#[test]
fn the_check_catches_upward_uses_a_cycle_and_http_reaching_into_the_domain() {
    let dir = std::env::temp_dir().join(format!("intercom-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let files = [
        ("lib.rs", "pub mod http; pub mod record; pub mod state; #[cfg(test)] mod t { use crate::state; }"),
        ("record.rs", "use crate::{lock, state::Store}; fn f() { log::info!(\"{}\", crate::rfc3339(x)); }"),
        ("state.rs", "use super::record::Record; /* crate::http */ const S: &str = \"crate::http\";"),
        ("http.rs", "mod inner { use super::Thing; fn f() -> super::super::state::Store { todo!() } }"),
    ];
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
    let uses = uses(&dir);
    let mut edges: Vec<_> = uses.iter().map(|u| format!("{} -> {}", u.from, u.to)).collect();
    edges.sort();
    edges.dedup();
    assert_eq!(edges, ["http -> state", "record -> lib", "record -> state", "state -> record"]);
    let bad = violations(&uses);
    assert_eq!(
        bad,
        [
            "src/http.rs:1: http (HTTP infrastructure) uses state (services), \
             but the HTTP infrastructure uses only the crate root",
            "src/record.rs:1: record (vocabulary and config) uses state (services), a higher layer",
            "module cycle: state -> record -> state",
        ]
    );
    fs::remove_dir_all(&dir).unwrap();
}
