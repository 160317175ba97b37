//! The folder layering of `src/` (see `src/lib.rs`): each folder's `mod.rs` names, on a
//! line `//! Uses: ...`, the folders it may use; a file may use its own folder and those,
//! the declared graph has no cycle, the HTTP layer uses only `util`, the files inside a
//! folder form no cycle, and `lib.rs`'s table says the same as the folders. This reads
//! the source as Rust tokens (so strings and comments never count), finds every
//! `crate::x::y` / `use crate::{x::y, ..}` / `super::x` (and `intercom::x` in `main.rs`),
//! skips `#[cfg(test)]` items (tests may use anything), and fails naming the file and
//! line of each offending use.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};

/// The folder that must stay free of the domain: our HTTP server knows no route and no
/// service, so that it can be fuzzed and reasoned about alone.
const HTTP_FOLDER: &str = "http";
/// What the HTTP folder may use, whatever its `mod.rs` says.
const HTTP_MAY_USE: &[&str] = &["util"];

/// One use: which module (`folder/file`, `folder` for a `mod.rs`, `lib`, `main`) uses
/// which, and where.
#[derive(Debug, Clone)]
struct Use {
    from: String,
    to: String,
    line: usize,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The folder a module belongs to (`lib` and `main` are their own).
fn folder(module: &str) -> &str {
    module.split('/').next().unwrap()
}

/// Every `.rs` file under `dir`, as its module name.
fn modules(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            for f in fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "rs") {
                    let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
                    let module = if stem == "mod" { name.clone() } else { format!("{name}/{stem}") };
                    out.insert(module, f);
                }
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.insert(p.file_stem().unwrap().to_string_lossy().into_owned(), p);
        }
    }
    out
}

/// The folders each folder's `mod.rs` says it may use (`//! Uses: `a`, `b`.`).
fn declared(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (module, path) in modules(dir) {
        if module.contains('/') || module == "lib" || module == "main" {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        let line = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .find(|l| l.starts_with("//! Uses:"))
            .unwrap_or_else(|| panic!("{}: the opening comment has no `//! Uses:` line", path.display()));
        let used = line.split('`').skip(1).step_by(2).map(str::to_string).collect();
        out.insert(module, used);
    }
    out
}

/// Every use of another module, outside `#[cfg(test)]` items.
fn uses(dir: &Path) -> Vec<Use> {
    let modules = modules(dir);
    let mut out = Vec::new();
    for (module, path) in &modules {
        let text = fs::read_to_string(path).unwrap();
        let tokens: TokenStream = text.parse().unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        // The binary reaches the library by its crate name.
        let root = if module == "main" { "intercom" } else { "crate" };
        // `super::` in a folder's file names its folder; in a `mod.rs`, the crate root.
        let parent = if module.contains('/') { Some(folder(module).to_string()) } else { None };
        let mut found = Vec::new();
        scan(tokens, root, 0, &mut found);
        for (mut segments, line) in found {
            if segments.first().is_some_and(|s| s == "super") {
                segments.remove(0);
                if let Some(p) = &parent {
                    segments.insert(0, p.clone());
                }
            }
            let to = resolve(&modules, &segments);
            if to != *module {
                out.push(Use { from: module.clone(), to, line });
            }
        }
    }
    out
}

/// The module a path from the crate root names: `folder/file`, `folder`, or `lib`.
fn resolve(modules: &BTreeMap<String, PathBuf>, segments: &[String]) -> String {
    match segments {
        [a, b, ..] if modules.contains_key(&format!("{a}/{b}")) => format!("{a}/{b}"),
        [a, ..] if modules.contains_key(a) => a.clone(),
        _ => "lib".to_string(),
    }
}

/// Collects `(the first two path segments after the crate root, line)` for every path
/// that starts at the crate root (or at `super::`, marked by a first segment `super`).
/// `depth` counts inline (non-test) `mod`s, so `super::` that only climbs to the file's
/// own module is not a use.
fn scan(tokens: TokenStream, root: &str, depth: usize, found: &mut Vec<(Vec<String>, usize)>) {
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
                targets(&t, i + 3, Vec::new(), found);
            }
            TokenTree::Ident(id) if id == "super" && !follows_path_sep(&t, i) => {
                let mut j = i;
                let mut climbs = 0;
                while matches!(&t.get(j), Some(TokenTree::Ident(s)) if s == "super") && path_sep(&t, j + 1) {
                    climbs += 1;
                    j += 3;
                }
                if climbs == depth + 1 {
                    targets(&t, j, vec!["super".to_string()], found);
                } else if climbs > depth + 1 {
                    targets(&t, j, Vec::new(), found);
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

/// What a path from the crate root names at `t[i]`: up to two segments, through `{..}`
/// groups (`crate::{a::{b, c}, d}` names `a::b`, `a::c` and `d`).
fn targets(t: &[TokenTree], i: usize, prefix: Vec<String>, found: &mut Vec<(Vec<String>, usize)>) {
    match t.get(i) {
        Some(TokenTree::Ident(id)) => {
            let mut segs = prefix;
            segs.push(id.to_string());
            let line = id.span().start().line;
            if segs.len() < 3
                && path_sep(t, i + 1)
                && matches!(t.get(i + 3), Some(TokenTree::Ident(_) | TokenTree::Group(_)))
            {
                targets(t, i + 3, segs, found);
            } else {
                found.push((segs, line));
            }
        }
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => {
            let inner: Vec<TokenTree> = g.stream().into_iter().collect();
            let mut at_start = true;
            for (k, tt) in inner.iter().enumerate() {
                match tt {
                    TokenTree::Ident(_) if at_start => {
                        targets(&inner, k, prefix.clone(), found);
                        at_start = false;
                    }
                    TokenTree::Punct(p) if p.as_char() == ',' => at_start = true,
                    _ => at_start = false,
                }
            }
            if inner.is_empty() && !prefix.is_empty() {
                found.push((prefix, g.span().start().line));
            }
        }
        _ if !prefix.is_empty() => found.push((prefix, 0)),
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

/// The violations: uses of a folder not declared (or, for `http/`, not allowed), a cycle
/// in the declared folder graph, and a cycle among the files of one folder.
fn violations(uses: &[Use], declared: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut bad = Vec::new();
    let mut files: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in uses {
        let (from, to) = (folder(&u.from), folder(&u.to));
        if from == to {
            files.entry(u.from.clone()).or_default().insert(u.to.clone());
            continue;
        }
        // The binary may use anything, and anything may use the crate root.
        if from == "main" || to == "lib" {
            continue;
        }
        let allowed = declared.get(from).is_some_and(|d| d.contains(to))
            && (from != HTTP_FOLDER || HTTP_MAY_USE.contains(&to));
        if !allowed {
            let path = if u.from.contains('/') {
                format!("src/{}.rs", u.from)
            } else {
                format!("src/{}/mod.rs", u.from)
            };
            let why = if from == HTTP_FOLDER {
                "but the HTTP layer uses only util".to_string()
            } else {
                format!("which {from}/mod.rs does not list under Uses")
            };
            bad.push(format!("{path}:{}: {} uses {to}/, {why}", u.line, u.from));
        }
    }
    if let Some(cycle) = find_cycle(declared) {
        bad.push(format!("folder cycle: {}", cycle.join(" -> ")));
    }
    if let Some(cycle) = find_cycle(&files) {
        bad.push(format!("module cycle: {}", cycle.join(" -> ")));
    }
    bad
}

#[test]
fn every_folder_declares_its_uses_and_lib_rs_tells_the_same() {
    let dir = src_dir();
    let declared = declared(&dir);
    assert!(declared.len() >= 8, "found only {:?}", declared.keys());
    let lib = fs::read_to_string(dir.join("lib.rs")).unwrap();
    for (folder, uses) in &declared {
        let row = lib
            .lines()
            .find(|l| l.starts_with(&format!("//! | `{folder}/` |")))
            .unwrap_or_else(|| panic!("src/lib.rs's table has no row for `{folder}/`"));
        let may_use = row.rsplit('|').nth(1).unwrap();
        let listed: BTreeSet<String> = may_use.split('`').skip(1).step_by(2).map(str::to_string).collect();
        let every_below = may_use.contains("every folder below");
        assert!(
            listed == *uses || (every_below && listed.is_empty()),
            "src/lib.rs says `{folder}/` may use {listed:?}, its mod.rs says {uses:?}"
        );
    }
}

#[test]
fn folders_depend_one_way_down_the_layers() {
    let dir = src_dir();
    let uses = uses(&dir);
    // The scan must see the real graph, or passing proves nothing.
    for (from, to) in [
        ("web/webhook", "http"),
        ("config", "model/record"),
        ("daemon/notify", "util"),
        ("main", "daemon/server"),
        ("store/state", "store/versioned"),
    ] {
        assert!(uses.iter().any(|u| u.from == from && u.to == to), "the scan missed {from} -> {to}");
    }
    let bad = violations(&uses, &declared(&dir));
    assert!(bad.is_empty(), "the folder layering is broken (see src/lib.rs):\n{}", bad.join("\n"));
}

#[test]
fn the_check_catches_undeclared_uses_cycles_and_http_reaching_into_the_domain() {
    let dir = std::env::temp_dir().join(format!("intercom-layers-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for sub in ["http", "model", "store"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let files = [
        ("lib.rs", "pub mod http; pub mod model; pub mod store; #[cfg(test)] mod t { use crate::store; }"),
        (
            "http/mod.rs",
            "//! Uses: `store`.\nmod inner { fn f() -> super::super::store::Store { panic!() } }",
        ),
        ("model/mod.rs", "//! Uses: `store`.\npub mod record;"),
        (
            "model/record.rs",
            "use crate::{lock, store::state::Store}; fn f() { log::info!(\"{}\", crate::rfc3339(x)); }",
        ),
        ("store/mod.rs", "//! Uses: `model`.\npub mod state; pub mod file;"),
        ("store/state.rs", "use super::file::F; /* crate::http */ const S: &str = \"crate::http\";"),
        ("store/file.rs", "use crate::store::state::S; use crate::http::Thing;"),
    ];
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
    let uses = uses(&dir);
    let mut edges: Vec<_> = uses.iter().map(|u| format!("{} -> {}", u.from, u.to)).collect();
    edges.sort();
    edges.dedup();
    assert_eq!(
        edges,
        [
            "http -> store",
            "model/record -> lib",
            "model/record -> store/state",
            "store/file -> http",
            "store/file -> store/state",
            "store/state -> store/file",
        ]
    );
    let bad = violations(&uses, &declared(&dir));
    assert_eq!(
        bad,
        [
            "src/http/mod.rs:2: http uses store/, but the HTTP layer uses only util",
            "src/store/file.rs:1: store/file uses http/, which store/mod.rs does not list under Uses",
            "folder cycle: store -> model -> store",
            "module cycle: store/file -> store/state -> store/file",
        ]
    );
    fs::remove_dir_all(&dir).unwrap();
}

/// The integration tests check the binary from outside: a signature or a parser taken
/// from `src/` would agree with `src/` however wrong both were. Only this file reads
/// `src/`, as text; the one thing taken from the crate is the control API's body types,
/// which the tests decode the server's answers into to show they match the CLI's.
#[test]
fn integration_tests_use_nothing_from_the_crate_but_the_api_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "layers.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let other = line.replace("intercom::model::api::", "");
            assert!(!other.contains("intercom::"), "{}:{}: {line}", path.display(), i + 1);
        }
        checked += 1;
    }
    assert!(checked >= 10, "found only {checked} files in {}", dir.display());
}
