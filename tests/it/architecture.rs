//! The shape of the code, checked: the import graph between the files of `src/` has no
//! circle, the top-level modules depend only on the layers below them (units at the bottom,
//! then the plan, the engines, the reports, the run and the command edge), no file is much
//! over 600 lines and no function over 120. Read with syn, so what counts is the code, not
//! its formatting.
//!
//! A file's dependencies are the files that define what its `use` items and its paths
//! (`crate::…`, `super::…`, and names it imported) name; a `pub use` is followed to the file
//! that defines the item, so a module's re-exports do not make a circle of their own. A
//! parent declaring its child (`mod x;`) is not a dependency; code that uses the child is.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::support::repo;

/// Module path (crate root = []) → the file's parsed contents.
struct Crate {
    files: BTreeMap<Vec<String>, File>,
}

struct File {
    path: PathBuf,
    text: String,
    ast: syn::File,
    /// Items defined at the top of the file (outside `#[cfg(test)]` modules).
    items: BTreeSet<String>,
    /// `use` items: the name they bind and the path they name (`self`/`super`/`crate` as
    /// written), and whether they re-export.
    uses: Vec<(String, Vec<String>, bool)>,
}

fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    if parts == ["main"] {
        return vec!["<main>".into()];
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_test_module(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string() == "test")
    })
}

/// Flattens a use tree into (bound name, path) pairs.
fn flatten(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) if n.ident == "self" => {
            out.push((prefix.last().cloned().unwrap_or_default(), prefix.clone()))
        }
        syn::UseTree::Name(n) => {
            let mut path = prefix.clone();
            path.push(n.ident.to_string());
            out.push((n.ident.to_string(), path));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            if r.ident != "self" {
                path.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), path));
        }
        syn::UseTree::Glob(_) => out.push(("*".into(), prefix.clone())),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| flatten(t, prefix, out)),
    }
}

impl Crate {
    fn read() -> Crate {
        let src = repo().join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let mut files = BTreeMap::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut items = BTreeSet::new();
            let mut uses = Vec::new();
            for item in &ast.items {
                let (name, attrs) = match item {
                    syn::Item::Struct(i) => (Some(&i.ident), &i.attrs),
                    syn::Item::Enum(i) => (Some(&i.ident), &i.attrs),
                    syn::Item::Fn(i) => (Some(&i.sig.ident), &i.attrs),
                    syn::Item::Const(i) => (Some(&i.ident), &i.attrs),
                    syn::Item::Static(i) => (Some(&i.ident), &i.attrs),
                    syn::Item::Type(i) => (Some(&i.ident), &i.attrs),
                    syn::Item::Trait(i) => (Some(&i.ident), &i.attrs),
                    syn::Item::Macro(i) => (i.ident.as_ref(), &i.attrs),
                    syn::Item::Use(u) => {
                        let mut flat = Vec::new();
                        flatten(&u.tree, &mut Vec::new(), &mut flat);
                        let public = matches!(u.vis, syn::Visibility::Public(_));
                        uses.extend(flat.into_iter().map(|(name, path)| (name, path, public)));
                        continue;
                    }
                    _ => continue,
                };
                if let Some(name) = name.filter(|_| !is_test_module(attrs)) {
                    items.insert(name.to_string());
                }
            }
            files.insert(
                module_of(&src, &path),
                File {
                    path,
                    text,
                    ast,
                    items,
                    uses,
                },
            );
        }
        Crate { files }
    }

    /// `path` as written in module `m`, made absolute (None: another crate's).
    fn absolute(&self, m: &[String], path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        let mut out: Vec<String> = match first.as_str() {
            "crate" | "wsstorm" => return Some(path[1..].to_vec()),
            "self" => m.to_vec(),
            "super" => {
                let mut base = m.to_vec();
                let mut rest = path;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            _ => {
                let mut child = m.to_vec();
                child.push(first.clone());
                if self.files.contains_key(&child) {
                    m.to_vec()
                } else {
                    return None;
                }
            }
        };
        out.extend(path.iter().skip(usize::from(first == "self")).cloned());
        Some(out)
    }

    /// The file that defines what `path` (absolute) names, following re-exports.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
        let mut module: Vec<String> = Vec::new();
        let mut i = 0;
        while i < path.len() {
            let mut next = module.clone();
            next.push(path[i].clone());
            if !self.files.contains_key(&next) {
                break;
            }
            module = next;
            i += 1;
        }
        let file = self.files.get(&module)?;
        if i == path.len() || depth > 8 || file.items.contains(&path[i]) {
            return Some(module);
        }
        for (name, target, _) in &file.uses {
            if *name == path[i] {
                let mut target = self.absolute(&module, target)?;
                target.extend(path[i + 1..].iter().cloned());
                return self.resolve(&target, depth + 1);
            }
        }
        Some(module)
    }

    /// Every file each file depends on.
    fn edges(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut edges = BTreeMap::new();
        for (m, file) in &self.files {
            let mut found = BTreeSet::new();
            let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
            for (name, path, _) in &file.uses {
                let Some(abs) = self.absolute(m, path) else {
                    continue;
                };
                if let Some(target) = self.resolve(&abs, 0) {
                    if target == abs {
                        aliases.insert(name.clone(), abs.clone());
                    }
                    found.insert(target);
                }
            }
            let mut paths = Paths::default();
            for item in &file.ast.items {
                let test_module = matches!(item, syn::Item::Mod(module) if is_test_module(&module.attrs));
                if !matches!(item, syn::Item::Use(_)) && !test_module {
                    paths.visit_item(item);
                }
            }
            for path in paths.0 {
                let abs = match aliases.get(&path[0]) {
                    Some(module) => Some(module.iter().chain(&path[1..]).cloned().collect()),
                    None => self.absolute(m, &path),
                };
                if let Some(target) = abs.and_then(|abs| self.resolve(&abs, 0)) {
                    found.insert(target);
                }
            }
            found.remove(m);
            edges.insert(m.clone(), found);
        }
        edges
    }
}

/// Every path of two or more segments in the code (expressions, types, patterns, macros are
/// not looked into).
#[derive(Default)]
struct Paths(Vec<Vec<String>>);

impl<'a> Visit<'a> for Paths {
    fn visit_path(&mut self, path: &'a syn::Path) {
        if path.segments.len() > 1 {
            self.0
                .push(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }
}

/// Strongly connected components of more than one file: the import circles.
fn circles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct Tarjan<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: HashMap<&'a Vec<String>, usize>,
        low: HashMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.out.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.out
}

fn name(m: &[String]) -> String {
    if m.is_empty() { "lib".into() } else { m.join("/") }
}

#[test]
fn no_import_circle_between_files() {
    let edges = Crate::read().edges();
    let circles: Vec<String> = circles(&edges)
        .iter()
        .map(|c| c.iter().map(|m| name(m)).collect::<Vec<_>>().join(" <-> "))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

/// What each top-level module may import. The plan (`scenario`) imports only the leaf units;
/// the engines import the plan and `metrics`, never each other; reports read metrics and the
/// plan, never the engines; `run` puts a run together; `cli` and `cmd` are the edge.
const LAYERS: &[(&str, &[&str])] = &[
    ("units", &[]),
    ("redact", &[]),
    ("exit", &[]),
    ("delay", &[]),
    // permessage-deflate under tungstenite: a leaf the clients and the built-in target share.
    ("deflate", &[]),
    // One HTTP request: the HTTP steps' and the remote write's.
    ("httpc", &[]),
    ("scenario", &["units", "redact"]),
    ("metrics", &["scenario", "units", "redact"]),
    (
        "swarm",
        &["metrics", "scenario", "units", "redact", "deflate", "httpc"],
    ),
    ("proxy", &["metrics", "scenario", "units", "delay"]),
    ("server", &["metrics", "scenario", "units", "delay", "deflate"]),
    ("report", &["metrics", "scenario", "units", "redact", "exit"]),
    // The live export: the collector's totals as Prometheus series, scraped or written.
    ("observe", &["metrics", "scenario", "units", "redact", "httpc"]),
    ("limits", &["scenario"]),
    (
        "run",
        &[
            "swarm", "proxy", "server", "report", "metrics", "observe", "scenario", "limits", "units",
            "redact", "exit",
        ],
    ),
    // Its value parsers: `--workers N|auto` is the run's to read.
    ("cli", &["run", "scenario", "units", "observe"]),
    (
        "cmd",
        &[
            "cli", "run", "report", "proxy", "server", "metrics", "observe", "scenario", "units", "redact",
            "exit",
        ],
    ),
    ("<main>", &["cli", "cmd", "redact"]),
];

#[test]
fn layers_point_down() {
    let edges = Crate::read().edges();
    let allowed: HashMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = BTreeSet::new();
    for (from, to) in &edges {
        let Some(top) = from.first() else { continue };
        let Some(may) = allowed.get(top.as_str()) else {
            panic!("src/{top} is not in LAYERS: say where it stands");
        };
        for target in to {
            let Some(other) = target.first() else { continue };
            if other != top && !may.contains(&other.as_str()) {
                wrong.insert(format!("{} -> {}", name(from), name(target)));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn files_and_functions_stay_small() {
    let krate = Crate::read();
    let mut long = Vec::new();
    let mut all = Vec::new();
    for file in krate.files.values() {
        let lines = file.text.lines().count();
        if lines > 620 {
            long.push(format!("{}: {lines} lines", file.path.display()));
        }
        let mut fns = Functions::default();
        fns.visit_file(&file.ast);
        for (name, lines) in fns.0 {
            all.push((lines, format!("{}: fn {name}", file.path.display())));
            if lines > 120 {
                long.push(format!("{}: fn {name}: {lines} lines", file.path.display()));
            }
        }
    }
    all.sort_unstable_by(|a, b| b.cmp(a));
    eprintln!("the longest functions: {:#?}", &all[..5]);
    assert!(
        long.is_empty(),
        "files over about 600 lines, functions over 120: {long:#?}"
    );
}

/// Every function and method with its length in lines.
#[derive(Default)]
struct Functions(Vec<(String, usize)>);

impl Functions {
    fn add(&mut self, name: &syn::Ident, block: &syn::Block) {
        use syn::spanned::Spanned;
        let span = block.span();
        self.0
            .push((name.to_string(), span.end().line - span.start().line + 1));
    }
}

impl<'a> Visit<'a> for Functions {
    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.add(&f.sig.ident, &f.block);
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        self.add(&f.sig.ident, &f.block);
        syn::visit::visit_impl_item_fn(self, f);
    }
}
