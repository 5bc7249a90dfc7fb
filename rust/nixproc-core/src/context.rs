//! String context per output string.
//!
//! Nix strings carry a *context*: the store paths and derivation outputs they
//! were made from. A generator returns new strings, so the plugin recomputes
//! their context: each output string gets exactly those context elements of
//! the input whose store path occurs in it (reference/nix-plugin-api.md §3.6).
//!
//! 1. [`collect`] indexes every context element seen anywhere in the input by
//!    the store path a string must mention for the element to be relevant:
//!    - opaque `/nix/store/h-n`: that path;
//!    - deep `=/nix/store/h-n.drv`: the `.drv` path;
//!    - built `!o!/nix/store/h-n.drv`: strings show the *output* path, which
//!      is not derivable from the element without reading the `.drv`, so in
//!      each input string that carried the element look for a store path
//!      named `n` (output `out`) or `n-o`; if there is none, all store paths
//!      of that string.
//! 2. [`attach`] scans every output string for store paths and replaces its
//!    context with the elements indexed under them.
//!
//! Store paths are recognised as `<storeDir>/<32 nix-base32 chars>-<name>`
//! and identified by their hash part, so `/nix/store/…-hello/bin/hello` and
//! `/nix/store/…-hello.conf` both mention `/nix/store/…-hello`.
//!
//! Limits: content-addressed outputs appear as placeholders rather than store
//! paths and are dropped; dynamic-derivation chains (`!o2!!o1!…`) and element
//! forms this code does not know are ignored.

use std::collections::{BTreeSet, HashMap};

use crate::value::Value;

/// Length of the hash part of a store path name.
pub const HASH_LEN: usize = 32;

/// Every context element seen in an input value, indexed by the store path a
/// string must mention for the element to be relevant.
#[derive(Debug, Default, Clone)]
pub struct ContextIndex {
    /// Hash part of a store path → the elements a string mentioning it gets.
    by_hash: HashMap<String, BTreeSet<String>>,
}

impl ContextIndex {
    /// True if the input carried no (usable) context at all.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The elements a string mentioning `store_path` gets (empty if none).
    pub fn elements_for(&self, store_path: &str, store_dir: &str) -> BTreeSet<String> {
        leading_store_path(store_path, store_dir)
            .and_then(|p| self.by_hash.get(p.hash))
            .cloned()
            .unwrap_or_default()
    }

    fn add(&mut self, hash: &str, elem: &str) {
        // Look up first: most elements are added many times (every string
        // of a derivation's attributes carries the same one).
        match self.by_hash.get_mut(hash) {
            Some(set) => {
                if !set.contains(elem) {
                    set.insert(elem.to_string());
                }
            }
            None => {
                self.by_hash
                    .insert(hash.to_string(), BTreeSet::from([elem.to_string()]));
            }
        }
    }
}

/// One store path occurring in a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorePathRef<'a> {
    /// `<storeDir>/<hash>-<name>`.
    pub path: &'a str,
    /// The 32-character hash part.
    pub hash: &'a str,
    /// The name after `<hash>-`.
    pub name: &'a str,
}

fn is_base32(b: u8) -> bool {
    // Nix's base-32 alphabet: digits and lower-case letters without e o u t.
    matches!(b, b'0'..=b'9' | b'a'..=b'd' | b'f'..=b'n' | b'p'..=b's' | b'v'..=b'z')
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'_' | b'?' | b'=')
}

/// All store paths occurring in `s`, in order. `store_dir` is e.g.
/// `/nix/store` (a trailing slash is allowed).
pub fn store_paths<'a>(s: &'a str, store_dir: &str) -> Vec<StorePathRef<'a>> {
    let mut out = Vec::new();
    for_each_store_path(s, store_dir, |p| out.push(p));
    out
}

fn for_each_store_path<'a>(s: &'a str, store_dir: &str, mut f: impl FnMut(StorePathRef<'a>)) {
    let dir = store_dir.trim_end_matches('/');
    if dir.is_empty() || s.len() < dir.len() + 2 + HASH_LEN {
        return;
    }
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(off) = s[from..].find(dir) {
        let start = from + off;
        let slash = start + dir.len();
        let hash_start = slash + 1;
        let dash = hash_start + HASH_LEN;
        let ok = bytes.get(slash) == Some(&b'/')
            && bytes.len() > dash + 1
            && bytes[hash_start..dash].iter().all(|&b| is_base32(b))
            && bytes[dash] == b'-'
            && is_name_char(bytes[dash + 1]);
        if !ok {
            from = start + 1;
            continue;
        }
        let mut end = dash + 1;
        while end < bytes.len() && is_name_char(bytes[end]) {
            end += 1;
        }
        // All bytes inspected are ASCII, so these are char boundaries.
        f(StorePathRef {
            path: &s[start..end],
            hash: &s[hash_start..dash],
            name: &s[dash + 1..end],
        });
        from = end;
    }
}

/// The store path `p` starts with (`p` is a store path or a path inside one).
fn leading_store_path<'a>(p: &'a str, store_dir: &str) -> Option<StorePathRef<'a>> {
    let mut first = None;
    for_each_store_path(p, store_dir, |sp| {
        if first.is_none() {
            first = Some(sp);
        }
    });
    let sp = first?;
    let end = sp.path.len();
    (sp.path.as_ptr() == p.as_ptr() && (end == p.len() || p.as_bytes()[end] == b'/')).then_some(sp)
}

/// The kinds of encoded context elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    /// `/nix/store/h-n`: a store path.
    Opaque(&'a str),
    /// `=/nix/store/h-n.drv`: a derivation with all its outputs.
    DrvDeep(&'a str),
    /// `!output!/nix/store/h-n.drv`: one output of a derivation.
    Built { output: &'a str, drv: &'a str },
}

/// Decodes an encoded context element; `None` for forms not handled here.
pub fn parse_element(elem: &str) -> Option<Element<'_>> {
    if let Some(drv) = elem.strip_prefix('=') {
        Some(Element::DrvDeep(drv))
    } else if let Some(rest) = elem.strip_prefix('!') {
        let (output, drv) = rest.split_once('!')?;
        if output.is_empty() || drv.starts_with('!') {
            return None; // dynamic-derivation chains are not handled
        }
        Some(Element::Built { output, drv })
    } else if elem.starts_with('/') {
        Some(Element::Opaque(elem))
    } else {
        None
    }
}

/// The name of the output path of `output` of the derivation named
/// `drv_name` (`hello.drv` + `out` → `hello`, + `bin` → `hello-bin`).
fn output_path_name(drv_name: &str, output: &str) -> Option<String> {
    let n = drv_name.strip_suffix(".drv")?;
    Some(if output == "out" {
        n.to_string()
    } else {
        format!("{n}-{output}")
    })
}

/// Indexes every context element in `input` (see the module docs).
pub fn collect(input: &Value, store_dir: &str) -> ContextIndex {
    let mut index = ContextIndex::default();
    collect_into(input, store_dir, &mut index);
    index
}

fn collect_into(v: &Value, store_dir: &str, index: &mut ContextIndex) {
    match v {
        Value::Str(ns) => {
            if ns.context.is_empty() {
                return;
            }
            // Store paths of this string, computed only if a `!o!` element needs them.
            let mut in_string: Option<Vec<StorePathRef>> = None;
            for elem in &ns.context {
                match parse_element(elem) {
                    Some(Element::Opaque(p)) | Some(Element::DrvDeep(p)) => {
                        if let Some(sp) = leading_store_path(p, store_dir) {
                            index.add(sp.hash, elem);
                        }
                    }
                    Some(Element::Built { output, drv }) => {
                        let Some(drv_path) = leading_store_path(drv, store_dir) else {
                            continue;
                        };
                        let Some(wanted) = output_path_name(drv_path.name, output) else {
                            continue;
                        };
                        let paths = in_string.get_or_insert_with(|| store_paths(&ns.s, store_dir));
                        let mut found = false;
                        for p in paths.iter().filter(|p| p.name == wanted) {
                            index.add(p.hash, elem);
                            found = true;
                        }
                        if !found {
                            for p in paths.iter() {
                                index.add(p.hash, elem);
                            }
                        }
                    }
                    None => {}
                }
            }
        }
        Value::List(items) => items.iter().for_each(|x| collect_into(x, store_dir, index)),
        Value::Attrs(map) => map.values().for_each(|x| collect_into(x, store_dir, index)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// Replaces the context of every string in `output` with exactly the
/// elements of `index` whose store path the string mentions.
pub fn attach(output: &mut Value, index: &ContextIndex, store_dir: &str) {
    match output {
        Value::Str(ns) => {
            ns.context.clear();
            if index.is_empty() {
                return;
            }
            let ctx = &mut ns.context;
            for_each_store_path(&ns.s, store_dir, |p| {
                if let Some(elems) = index.by_hash.get(p.hash) {
                    for e in elems {
                        if !ctx.contains(e) {
                            ctx.insert(e.clone());
                        }
                    }
                }
            });
        }
        Value::List(items) => items.iter_mut().for_each(|x| attach(x, index, store_dir)),
        Value::Attrs(map) => map.values_mut().for_each(|x| attach(x, index, store_dir)),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{attrs, NixString};

    const SD: &str = "/nix/store";
    const H1: &str = "0123456789abcdfghijklmnpqrsvwxyz";
    const H2: &str = "zyxwvsrqpnmlkjihgfdcba9876543210";
    const H3: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const H4: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const H5: &str = "cccccccccccccccccccccccccccccccc";

    fn sp(h: &str, n: &str) -> String {
        format!("{SD}/{h}-{n}")
    }

    fn s(text: &str, ctx: &[&str]) -> Value {
        Value::Str(NixString {
            s: text.to_string(),
            context: ctx.iter().map(|c| c.to_string()).collect(),
        })
    }

    fn ctx_of(v: &Value) -> Vec<String> {
        match v {
            Value::Str(ns) => ns.context.iter().cloned().collect(),
            other => panic!("not a string: {other:?}"),
        }
    }

    fn echo(input: &Value) -> Value {
        let index = collect(input, SD);
        let mut out = input.clone();
        attach(&mut out, &index, SD);
        out
    }

    #[test]
    fn scanner_finds_paths_inside_strings() {
        let hello = sp(H1, "hello");
        let text = format!("exec {hello}/bin/hello --conf={}.conf; x", sp(H2, "cfg"));
        let found = store_paths(&text, SD);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].path, hello);
        assert_eq!(found[0].name, "hello");
        assert_eq!(found[1].hash, H2);
        assert_eq!(found[1].name, "cfg.conf");
        // trailing slash in the store dir is fine
        assert_eq!(store_paths(&text, "/nix/store/").len(), 2);
    }

    #[test]
    fn scanner_rejects_non_store_paths() {
        for text in [
            "/nix/store".to_string(),
            "/nix/store/".to_string(),
            format!("/nix/store/{}-x", &H1[..31]), // short hash
            format!("/nix/store/{}-x", H1.replace('0', "e")), // 'e' is not base32
            format!("/nix/store/{H1}x"),           // no dash
            format!("/nix/store/{H1}-"),           // empty name
            format!("/nix/store/{H1}-/x"),         // empty name
            format!("/nix/storex/{H1}-x"),
            format!("/other/{H1}-x"),
        ] {
            assert!(store_paths(&text, SD).is_empty(), "{text}");
        }
        // adjacent and repeated paths
        let two = format!("{}{}", sp(H1, "a"), sp(H2, "b"));
        // "a/nix/store..." : name stops at '/', so both are found
        assert_eq!(store_paths(&two, SD).len(), 2);
        // non-ASCII around paths
        let t = format!("é{}é", sp(H3, "x"));
        assert_eq!(store_paths(&t, SD)[0].name, "x");
    }

    #[test]
    fn parses_elements() {
        let drv = sp(H1, "hello.drv");
        assert_eq!(parse_element(&drv), Some(Element::Opaque(&drv)));
        assert_eq!(
            parse_element(&format!("={drv}")),
            Some(Element::DrvDeep(&drv))
        );
        assert_eq!(
            parse_element(&format!("!bin!{drv}")),
            Some(Element::Built {
                output: "bin",
                drv: &drv
            })
        );
        assert_eq!(parse_element("%poison"), None);
        assert_eq!(parse_element(&format!("!o2!!o1!{drv}")), None);
    }

    #[test]
    fn each_output_string_gets_exactly_its_elements() {
        let hello_drv = sp(H1, "hello.drv");
        let hello_out = sp(H2, "hello");
        let multi_drv = sp(H3, "multi.drv");
        let multi_bin = sp(H4, "multi-bin");
        let file = sp(H5, "somefile");
        let e_hello = format!("!out!{hello_drv}");
        let e_multi = format!("!bin!{multi_drv}");
        let input = attrs([
            ("a", s(&format!("{hello_out}/bin/hello"), &[&e_hello])),
            ("b", s("no refs", &[])),
            ("c", s(&file, &[&file])),
            ("d", s(&format!("{multi_bin}/bin/x"), &[&e_multi])),
        ]);
        let index = collect(&input, SD);
        assert!(!index.is_empty());
        // A generator builds new strings from the inputs.
        let mut out = attrs([
            (
                "script",
                Value::str(format!("#!/bin/sh\nexec {hello_out}/bin/hello -c {file}\n")),
            ),
            ("plain", Value::str("nothing here")),
            (
                "list",
                Value::List(vec![
                    Value::str(format!("{multi_bin}/bin/x")),
                    Value::Int(1),
                    // carries stale context that must be dropped
                    s("stale", &[&e_hello]),
                ]),
            ),
        ]);
        attach(&mut out, &index, SD);
        let o = out.as_attrs().unwrap();
        let mut want = vec![e_hello.clone(), file.clone()];
        want.sort();
        assert_eq!(ctx_of(&o["script"]), want);
        assert!(ctx_of(&o["plain"]).is_empty());
        let Value::List(l) = &o["list"] else { panic!() };
        assert_eq!(ctx_of(&l[0]), vec![e_multi.clone()]);
        assert!(ctx_of(&l[2]).is_empty());

        // echo: every string keeps exactly its own
        let e = echo(&input);
        let e = e.as_attrs().unwrap();
        assert_eq!(ctx_of(&e["a"]), vec![e_hello]);
        assert!(ctx_of(&e["b"]).is_empty());
        assert_eq!(ctx_of(&e["c"]), vec![file]);
        assert_eq!(ctx_of(&e["d"]), vec![e_multi]);
    }

    #[test]
    fn drv_deep_and_opaque_drv_elements_follow_the_drv_path() {
        let drv = sp(H1, "x.drv");
        let deep = format!("={drv}");
        let input = Value::List(vec![s(&drv, &[&deep]), s(&format!("{drv}!"), &[&drv])]);
        let index = collect(&input, SD);
        let mut out = Value::List(vec![
            Value::str(format!("drv is {drv}")),
            Value::str(sp(H2, "x")),
        ]);
        attach(&mut out, &index, SD);
        let Value::List(l) = &out else { panic!() };
        let mut want = vec![deep, drv.clone()];
        want.sort();
        assert_eq!(ctx_of(&l[0]), want);
        assert!(ctx_of(&l[1]).is_empty());
    }

    #[test]
    fn built_element_falls_back_to_all_paths_of_its_string() {
        // The output path's name does not match `n`/`n-o` (e.g. a renamed
        // output): every store path of the carrying string counts.
        let drv = sp(H1, "weird.drv");
        let e = format!("!out!{drv}");
        let p1 = sp(H2, "something-else");
        let p2 = sp(H3, "other");
        let input = s(&format!("{p1} {p2}"), &[&e]);
        let index = collect(&input, SD);
        assert_eq!(index.elements_for(&p1, SD), BTreeSet::from([e.clone()]));
        assert_eq!(index.elements_for(&p2, SD), BTreeSet::from([e.clone()]));
        assert!(index.elements_for(&sp(H4, "x"), SD).is_empty());

        // With a matching name, only that one.
        let good = sp(H4, "weird");
        let input = s(&format!("{p1} {good}"), &[&e]);
        let index = collect(&input, SD);
        assert_eq!(index.elements_for(&good, SD), BTreeSet::from([e]));
        assert!(index.elements_for(&p1, SD).is_empty());
    }

    #[test]
    fn same_element_in_several_strings_is_merged() {
        let drv = sp(H1, "multi.drv");
        let e = format!("!out!{drv}");
        let out_path = sp(H2, "multi");
        let input = Value::List(vec![
            s(&format!("{out_path}/a"), &[&e]),
            s(&format!("{out_path}/b"), &[&e]),
        ]);
        let idx = collect(&input, SD);
        assert_eq!(idx.by_hash.len(), 1);
        assert_eq!(idx.elements_for(&out_path, SD).len(), 1);
    }

    #[test]
    fn no_context_in_input_means_none_in_output() {
        let input = s(&sp(H1, "x"), &[]);
        let index = collect(&input, SD);
        assert!(index.is_empty());
        let mut out = s(&sp(H1, "x"), &[&sp(H1, "x")]);
        attach(&mut out, &index, SD);
        assert!(ctx_of(&out).is_empty());
    }

    #[test]
    fn other_store_dirs() {
        let sd = "/gnu/store";
        let p = format!("{sd}/{H1}-x");
        let input = s(&p, &[&p]);
        let index = collect(&input, sd);
        let mut out = Value::str(format!("{p}/bin"));
        attach(&mut out, &index, sd);
        assert_eq!(ctx_of(&out), vec![p.clone()]);
        // elements outside the store dir are ignored
        assert!(collect(&input, SD).is_empty());
    }

    #[test]
    fn large_inputs_are_linear() {
        // 5,000 strings each with its own path, one output string naming all.
        let n = 5000;
        let hashes: Vec<String> = (0..n)
            .map(|i| {
                let mut h = format!("{i:0>32}");
                h = h.replace('e', "f");
                h
            })
            .collect();
        let input = Value::List(
            hashes
                .iter()
                .map(|h| {
                    let p = sp(h, "p");
                    s(&p, &[&p])
                })
                .collect(),
        );
        let t = std::time::Instant::now();
        let index = collect(&input, SD);
        let all: String = hashes.iter().map(|h| sp(h, "p") + " ").collect();
        let mut out = Value::List(vec![Value::str(all); 3]);
        attach(&mut out, &index, SD);
        let Value::List(l) = &out else { panic!() };
        assert_eq!(ctx_of(&l[0]).len(), n);
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }
}
