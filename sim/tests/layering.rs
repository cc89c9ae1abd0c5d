//! Keeps the structure of both crates: reads every `crate::…`, `super::…`
//! and `self::…` path of their source files (tests and comments aside) and
//! fails, naming the edge and its line, when an import goes against the
//! layering of `docs/ARCHITECTURE.md` or closes a circle between files.
//!
//! The rule (docs/ARCHITECTURE.md, "Import rules", says the same):
//! - every source file is a node; a path naming a module adds an edge from
//!   the file to the deepest module file the path reaches, following `pub
//!   use` re-exports (a re-export line is not an edge itself);
//! - a file naming one of its own ancestor modules (`use super::Thing`) is
//!   not an edge: a submodule is part of its parent;
//! - the graph must have no circle, in `src/` and in `sim/src/`;
//! - in `sim/src/`, a module of layer L may import only layers ≤ L, the
//!   layers being the table between the `layers:begin` and `layers:end`
//!   marks of docs/ARCHITECTURE.md, lowest first.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path inside a crate, e.g. `["world", "net"]`; empty is the root.
type ModPath = Vec<String>;

/// One path occurrence in a file: what it names and on which line.
#[derive(Clone, Debug)]
struct Mention {
    segments: Vec<String>,
    line: usize,
}

/// One source file as the checker sees it.
#[derive(Debug)]
struct SourceFile {
    module: ModPath,
    /// Shown in messages, relative to the repository.
    shown: String,
    /// Paths used (edges to be).
    uses: Vec<Mention>,
    /// `pub use` re-exports: the name and the full path it re-exports.
    reexports: Vec<Mention>,
}

/// An edge of the file graph with its evidence.
#[derive(Clone, Debug)]
struct Edge {
    from: ModPath,
    to: ModPath,
    shown_from: String,
    line: usize,
    path: String,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn show(m: &[String]) -> String {
    if m.is_empty() {
        "crate root".to_string()
    } else {
        m.join("::")
    }
}

// ---------------------------------------------------------------- lexing

/// `src` with comments, string and char literals blanked out (newlines
/// kept, so offsets still give line numbers).
fn blank_comments_and_literals(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let keep = |c: u8| if c == b'\n' { b'\n' } else { b' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend([b' ', b' ']);
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend([b' ', b' ']);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(keep(b[i]));
                    i += 1;
                }
            }
        } else if c == b'r' && (next == Some(b'"') || next == Some(b'#')) && !ident_before(b, i) {
            // raw string r"..." or r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            j += 1;
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            let end = (j + close.len()).min(b.len());
            out.extend(b[i..end].iter().map(|&c| keep(c)));
            i = end;
        } else if c == b'"' {
            out.push(b' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                let step = if b[i] == b'\\' { 2 } else { 1 };
                for k in 0..step {
                    if let Some(&c) = b.get(i + k) {
                        out.push(keep(c));
                    }
                }
                i += step;
            }
            out.push(b' ');
            i += 1;
        } else if c == b'\'' && is_char_literal(b, i) {
            let mut j = i + 1;
            if b[j] == b'\\' {
                j += 2;
            }
            while j < b.len() && b[j] != b'\'' {
                j += 1;
            }
            out.extend(std::iter::repeat_n(b' ', j + 1 - i));
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps ASCII structure")
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// `'x'` or `'\n'`, as opposed to a lifetime `'a`.
fn is_char_literal(b: &[u8], i: usize) -> bool {
    match (b.get(i + 1), b.get(i + 2)) {
        (Some(b'\\'), _) => true,
        (Some(_), Some(b'\'')) => true,
        // a multi-byte UTF-8 char
        (Some(c), _) if *c >= 0x80 => true,
        _ => false,
    }
}

/// `text` without `#[cfg(test)]` items (a `mod tests { … }` or a `use`).
fn drop_test_items(text: &str) -> String {
    let mut out = text.to_string();
    while let Some(at) = out.find("#[cfg(test)]") {
        let after = at + "#[cfg(test)]".len();
        let rest = &out[after..];
        let end = match (rest.find('{'), rest.find(';')) {
            (Some(brace), semi) if semi.is_none_or(|s| brace < s) => {
                let mut depth = 0;
                let mut end = rest.len();
                for (k, ch) in rest[brace..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => rest.len(),
        };
        let blank: String = out[at..after + end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..after + end, &blank);
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// The flat paths of a use tree: `a::{b, c::{d, e as f}}` gives `a::b`,
/// `a::c::d`, `a::c::e`.
fn expand_use_tree(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let prefix = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (k, ch) in body.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use_tree(&prefix, &body[start..k], out);
                    start = k + 1;
                }
                _ => {}
            }
        }
        expand_use_tree(&prefix, &body[start..], out);
    } else if !tree.is_empty() {
        let name = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(join(prefix, name));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn word_at(text: &str, at: usize, word: &str) -> bool {
    text[at..].starts_with(word)
        && !text[..at].ends_with(is_ident)
        && !text[at + word.len()..].starts_with(is_ident)
}

/// Reads one file: its `use` items (re-exports apart) and every other
/// `crate::`/`super::`/`self::` path.
fn scan(module: ModPath, shown: String, src: &str) -> SourceFile {
    let text = drop_test_items(&blank_comments_and_literals(src));
    let mut uses = Vec::new();
    let mut reexports = Vec::new();
    let mut covered = vec![false; text.len()];
    let mut at = 0;
    while let Some(k) = text[at..].find("use") {
        let pos = at + k;
        at = pos + 3;
        if !word_at(&text, pos, "use") {
            continue;
        }
        let Some(semi) = text[pos..].find(';') else {
            break;
        };
        let before = text[..pos].trim_end();
        let public = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        let mut paths = Vec::new();
        expand_use_tree("", &text[pos + 3..pos + semi], &mut paths);
        let line = line_of(&text, pos);
        for p in paths {
            let segments: Vec<String> = p.split("::").map(|s| s.trim().to_string()).collect();
            let mention = Mention { segments, line };
            if public {
                reexports.push(mention);
            } else {
                uses.push(mention);
            }
        }
        covered[pos..pos + semi].iter_mut().for_each(|c| *c = true);
    }
    for root in ["crate::", "super::", "self::"] {
        let mut at = 0;
        while let Some(k) = text[at..].find(root) {
            let pos = at + k;
            at = pos + root.len();
            if covered[pos] || text[..pos].ends_with(is_ident) || text[..pos].ends_with("::") {
                continue;
            }
            let end = text[pos..]
                .find(|c: char| !(is_ident(c) || c == ':'))
                .map_or(text.len(), |e| pos + e);
            let segments: Vec<String> = text[pos..end]
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            uses.push(Mention {
                segments,
                line: line_of(&text, pos),
            });
        }
    }
    SourceFile {
        module,
        shown,
        uses,
        reexports,
    }
}

// ---------------------------------------------------------------- graph

/// The non-test source files of the crate whose root is `root/lib.rs`,
/// leaving out the folders and files in `skip` (the binary's own).
fn read_crate(root: &Path, shown_prefix: &str, skip: &[&str]) -> Vec<SourceFile> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("readable source folder") {
            let path = entry.expect("readable entry").path();
            let rel = path.strip_prefix(root).expect("under root");
            let rel_s = rel.to_string_lossy().replace('\\', "/");
            if skip
                .iter()
                .any(|s| rel_s == *s || rel_s.starts_with(&format!("{s}/")))
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".rs") || name == "tests.rs" || rel_s.contains("/tests/") {
                continue;
            }
            let src = fs::read_to_string(&path).expect("readable file");
            files.push(scan(
                module_of(&rel_s),
                format!("{shown_prefix}{rel_s}"),
                &src,
            ));
        }
    }
    files.sort_by(|a, b| a.module.cmp(&b.module));
    files
}

/// The module a file is, from its path under the crate's `src/`:
/// `world/net.rs` and `world/net/mod.rs` are `world::net`, `lib.rs` the root.
fn module_of(rel: &str) -> ModPath {
    let mut module: ModPath = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if module.last().is_some_and(|l| l == "mod" || l == "lib") {
        module.pop();
    }
    module
}

/// Where `segments` (a path used in `from`) leads: the deepest module
/// file, re-exports followed.
fn resolve(
    from: &ModPath,
    segments: &[String],
    modules: &BTreeSet<ModPath>,
    reexports: &BTreeMap<(ModPath, String), ModPath>,
) -> Option<ModPath> {
    let mut base: ModPath = match segments.first()?.as_str() {
        "crate" => Vec::new(),
        "super" | "self" => from.clone(),
        _ => return None,
    };
    let mut rest = &segments[1..];
    if segments[0] == "super" {
        base.pop();
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop();
        rest = &rest[1..];
    }
    for _hop in 0..8 {
        while let Some(next) = rest.first() {
            let mut deeper = base.clone();
            deeper.push(next.clone());
            if !modules.contains(&deeper) {
                break;
            }
            base = deeper;
            rest = &rest[1..];
        }
        match rest
            .first()
            .and_then(|n| reexports.get(&(base.clone(), n.clone())))
        {
            Some(target) if target != &base => {
                base = target.clone();
                rest = &rest[1..];
            }
            _ => break,
        }
    }
    Some(base)
}

fn edges(files: &[SourceFile]) -> BTreeMap<ModPath, Vec<Edge>> {
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let mut reexports = BTreeMap::new();
    for f in files {
        for r in &f.reexports {
            let Some(name) = r.segments.last() else {
                continue;
            };
            let parent = &r.segments[..r.segments.len() - 1];
            let full: Vec<String> = if matches!(
                parent.first().map(String::as_str),
                Some("crate" | "super" | "self")
            ) {
                parent.to_vec()
            } else {
                std::iter::once("self".to_string())
                    .chain(parent.iter().cloned())
                    .collect()
            };
            if let Some(target) = resolve(&f.module, &full, &modules, &BTreeMap::new()) {
                reexports.insert((f.module.clone(), name.clone()), target);
            }
        }
    }
    let mut graph = BTreeMap::new();
    for f in files {
        let mut out: Vec<Edge> = Vec::new();
        for m in &f.uses {
            let Some(to) = resolve(&f.module, &m.segments, &modules, &reexports) else {
                continue;
            };
            if f.module.starts_with(&to) || out.iter().any(|e| e.to == to) {
                continue;
            }
            out.push(Edge {
                from: f.module.clone(),
                to,
                shown_from: f.shown.clone(),
                line: m.line,
                path: m.segments.join("::"),
            });
        }
        graph.insert(f.module.clone(), out);
    }
    graph
}

/// Every import circle, each as the edges that close it.
fn circles(graph: &BTreeMap<ModPath, Vec<Edge>>) -> Vec<Vec<Edge>> {
    // A circle through each module that is on one and not yet reported.
    let mut reported: BTreeSet<ModPath> = BTreeSet::new();
    let mut found = Vec::new();
    for start in graph.keys() {
        if reported.contains(start) {
            continue;
        }
        if let Some(circle) = path_back(graph, start) {
            reported.extend(circle.iter().map(|e| e.to.clone()));
            found.push(circle);
        }
    }
    found
}

/// The shortest chain of edges from `start` back to `start`, if any.
fn path_back(graph: &BTreeMap<ModPath, Vec<Edge>>, start: &ModPath) -> Option<Vec<Edge>> {
    let mut came: BTreeMap<ModPath, Edge> = BTreeMap::new();
    let mut frontier = vec![start.clone()];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for node in frontier {
            for e in graph.get(&node).into_iter().flatten() {
                if &e.to == start {
                    let mut chain = vec![e.clone()];
                    let mut at = node.clone();
                    while &at != start {
                        let prev = came[&at].clone();
                        at = prev.from.clone();
                        chain.push(prev);
                    }
                    chain.reverse();
                    return Some(chain);
                }
                if !came.contains_key(&e.to) && &e.to != start {
                    came.insert(e.to.clone(), e.clone());
                    next.push(e.to.clone());
                }
            }
        }
        frontier = next;
    }
    None
}

fn describe_circle(crate_name: &str, circle: &[Edge]) -> String {
    let mut s = format!("{crate_name}: import circle:");
    for e in circle {
        s += &format!(
            "\n    {}:{} uses `{}` (→ {})",
            e.shown_from,
            e.line,
            e.path,
            show(&e.to)
        );
    }
    s
}

/// The layers of `sim/src`, lowest first, as docs/ARCHITECTURE.md lists
/// them between its `layers:begin` and `layers:end` marks (first word of
/// each line of the table).
fn layers_from(doc: &str) -> Vec<String> {
    let begin = doc
        .find("layers:begin")
        .expect("docs/ARCHITECTURE.md has a layers:begin mark");
    let end = doc
        .find("layers:end")
        .expect("docs/ARCHITECTURE.md has a layers:end mark");
    doc[begin..end]
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().trim_start_matches('|').split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_string)
        .collect()
}

/// Every import that goes up the layering.
fn upward(graph: &BTreeMap<ModPath, Vec<Edge>>, layers: &[String]) -> Vec<String> {
    let rank = |m: &ModPath| {
        m.first()
            .and_then(|top| layers.iter().position(|l| l == top))
    };
    let mut bad = Vec::new();
    for (from, es) in graph {
        let Some(r_from) = rank(from) else {
            if !from.is_empty() {
                bad.push(format!(
                    "sim: module `{}` is in no layer of docs/ARCHITECTURE.md ({})",
                    show(from),
                    layers.join(" < ")
                ));
            }
            continue;
        };
        for e in es {
            if let Some(r_to) = rank(&e.to)
                && r_to > r_from
            {
                bad.push(format!(
                    "sim: {}:{} uses `{}`: layer `{}` may not import layer `{}` (layers, lowest first: {})",
                    e.shown_from,
                    e.line,
                    e.path,
                    layers[r_from],
                    layers[r_to],
                    layers.join(" < ")
                ));
            }
        }
    }
    bad
}

/// Everything wrong with one crate's imports.
fn problems(crate_name: &str, files: &[SourceFile], layers: Option<&[String]>) -> Vec<String> {
    let graph = edges(files);
    let mut out: Vec<String> = circles(&graph)
        .iter()
        .map(|c| describe_circle(crate_name, c))
        .collect();
    if let Some(layers) = layers {
        out.extend(upward(&graph, layers));
    }
    out
}

#[test]
fn imports_follow_the_layers_and_close_no_circle() {
    let root = repo();
    let doc = fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let layers = layers_from(&doc);
    assert!(
        layers.len() >= 5,
        "too few layers read from docs/ARCHITECTURE.md: {layers:?}"
    );
    let sim = read_crate(&root.join("sim/src"), "sim/src/", &["main.rs", "cli"]);
    let port = read_crate(&root.join("src"), "src/", &[]);
    assert!(
        sim.len() > 30 && port.len() > 20,
        "the source folders were not found"
    );
    let mut all = problems("sim", &sim, Some(&layers));
    all.extend(problems("src", &port, None));
    assert!(
        all.is_empty(),
        "{} import problem(s):\n{}",
        all.len(),
        all.join("\n")
    );
}

// A checker that cannot fail is no checker: the same rules on small
// made-up crates.

fn fake(files: &[(&str, &str)]) -> Vec<SourceFile> {
    files
        .iter()
        .map(|(path, src)| scan(module_of(path), path.to_string(), src))
        .collect()
}

fn layers() -> Vec<String> {
    layers_from("layers:begin\n| engine | x |\n| world | y |\nlayers:end")
}

#[test]
fn an_import_against_the_layers_is_named_with_its_line() {
    let files = fake(&[
        ("lib.rs", "pub mod engine;\npub mod world;"),
        ("engine/mod.rs", "pub mod executor;"),
        (
            "engine/executor.rs",
            "// crate::world::net in a comment is fine\n\nuse crate::world::net::Peer;\n",
        ),
        ("world/mod.rs", "pub mod net;"),
        ("world/net.rs", "pub struct Peer;"),
    ]);
    let found = problems("sim", &files, Some(&layers()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("engine/executor.rs:3 uses `crate::world::net::Peer`: layer `engine` may not import layer `world`"),
        "{found:?}"
    );
}

#[test]
fn a_circle_between_siblings_is_named_edge_by_edge() {
    let files = fake(&[
        (
            "lib.rs",
            "pub mod options;\npub mod store;\npub mod peer_server;",
        ),
        ("options.rs", "use crate::store::Store;"),
        ("store.rs", "fn f() { crate::peer_server::serve(); }"),
        (
            "peer_server.rs",
            "use crate::options::{Options, other::X};\nconst S: &str = \"crate::store\";",
        ),
    ]);
    let found = problems("src", &files, None);
    assert_eq!(found.len(), 1, "{found:?}");
    for edge in [
        "options.rs:1 uses `crate::store::Store`",
        "store.rs:1 uses `crate::peer_server::serve`",
        "peer_server.rs:1 uses `crate::options::Options`",
    ] {
        assert!(found[0].contains(edge), "{edge} missing from {found:?}");
    }
}

#[test]
fn a_re_export_is_followed_to_the_file_that_defines_the_item() {
    // `crate::table_shard::Workers` is re-exported from `workers.rs`: the
    // circle copy ↔ workers is found through it; a child naming its parent
    // (`super::Thing`) and test modules are not edges.
    let files = fake(&[
        (
            "table_shard/mod.rs",
            "mod copy;\nmod workers;\npub use workers::Workers;\nuse self::copy::run;",
        ),
        (
            "table_shard/copy.rs",
            "use crate::table_shard::Workers;\nuse super::Thing;",
        ),
        (
            "table_shard/workers.rs",
            "use super::copy::helper;\n#[cfg(test)]\nmod tests { use crate::table_shard::copy::x; }",
        ),
    ]);
    let found = problems("src", &files, None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("copy.rs:1 uses `crate::table_shard::Workers` (→ table_shard::workers)"),
        "{found:?}"
    );
    let clean = fake(&[
        ("table_shard/mod.rs", "mod copy;\npub use copy::run;"),
        (
            "table_shard/copy.rs",
            "use super::Thing;\n#[cfg(test)]\nmod tests { use crate::table_shard::x; }",
        ),
    ]);
    assert!(problems("src", &clean, None).is_empty());
}
