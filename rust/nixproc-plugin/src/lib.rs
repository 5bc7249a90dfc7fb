//! The Nix evaluator plugin: registers every entry of
//! [`nixproc_core::primops::PRIMOPS`] as `builtins.<name>`.
//!
//! Division of labour (see `cpp-shim/plugin.cc`):
//! - C++ forces and walks the Nix argument and pushes it into an
//!   [`InBuilder`]; every Nix call (which may throw) happens in C++ frames.
//! - Rust rebuilds a [`Value`], calls the primop, recomputes the string
//!   context of every output string ([`nixproc_core::context`]) and returns a
//!   flat pre-order tape of [`ffi::OutNode`]s, which C++ turns into Nix values.
//! - Every `extern "Rust"` entry point catches panics: a panic becomes an
//!   `Err` (a catchable Nix error), never an abort of `nix`.
//! - No GC pointer is ever held in Rust memory.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use nixproc_core::context;
use nixproc_core::primops::{self, PRIMOPS};
use nixproc_core::value::{NixString, Value};

#[cxx::bridge(namespace = "nixproc")]
mod ffi {
    /// Node kinds of the output tape.
    #[derive(Debug)]
    enum Kind {
        Null,
        Bool,
        Int,
        Float,
        Str,
        List,
        Attrs,
    }

    /// One node of the pre-order output tape. `List`/`Attrs` nodes carry their
    /// child count in `len`; children of an `Attrs` node carry their `key`.
    #[derive(Debug)]
    struct OutNode {
        kind: Kind,
        key: String,
        s: String,
        ctx: Vec<String>,
        i: i64,
        f: f64,
        b: bool,
        len: usize,
    }

    /// Name and documentation of one primop, for registration.
    struct PrimOpInfo {
        name: String,
        doc: String,
    }

    extern "Rust" {
        type InBuilder;

        fn new_builder(store_dir: &[u8]) -> Box<InBuilder>;
        /// A context element of the next `string`.
        fn context(self: &mut InBuilder, elem: &[u8]);
        fn string(self: &mut InBuilder, s: &[u8]);
        fn null(self: &mut InBuilder);
        fn boolean(self: &mut InBuilder, b: bool);
        fn integer(self: &mut InBuilder, i: i64);
        fn floating(self: &mut InBuilder, f: f64);
        fn begin_list(self: &mut InBuilder, n: usize);
        fn begin_attrs(self: &mut InBuilder, n: usize);
        /// The name of the next attribute of the innermost attrset.
        fn key(self: &mut InBuilder, k: &[u8]);
        /// Closes the innermost list or attrset.
        fn end(self: &mut InBuilder);

        /// All primops to register, in registry order (the index is what
        /// `call_primop` takes).
        fn primop_infos() -> Vec<PrimOpInfo>;
        /// Runs primop number `index` on the built argument.
        fn call_primop(index: usize, arg: Box<InBuilder>) -> Result<Vec<OutNode>>;
        /// Empty if the running Nix is the one the plugin was built for,
        /// otherwise the warning to print (and nothing gets registered).
        fn version_mismatch_warning(running: &[u8], built: &[u8]) -> String;
    }

    unsafe extern "C++" {
        include!("cpp-shim/shim.h");
        fn register_primops();
    }
}

use ffi::{Kind, OutNode, PrimOpInfo};

/// Registration runs when Nix `dlopen`s the plugin. An ELF constructor in
/// Rust also guarantees the linker keeps the C++ object file (nothing else
/// in Rust refers to it).
#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    // register_primops catches every C++ exception itself.
    ffi::register_primops();
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

// ---------------------------------------------------------------------------
// Input: C++ pushes the Nix value in pre-order.

enum Frame {
    List(Vec<Value>, usize),
    Attrs(BTreeMap<String, Value>, Option<String>, usize),
}

/// Rebuilds a [`Value`] from the calls C++ makes while walking the argument.
/// Errors (non-UTF-8 data, malformed call sequences) are recorded and
/// reported when the primop is called.
pub struct InBuilder {
    store_dir: String,
    stack: Vec<Frame>,
    pending_ctx: BTreeSet<String>,
    root: Option<Value>,
    error: Option<String>,
}

fn new_builder(store_dir: &[u8]) -> Box<InBuilder> {
    Box::new(InBuilder {
        store_dir: String::from_utf8_lossy(store_dir).into_owned(),
        stack: Vec::new(),
        pending_ctx: BTreeSet::new(),
        root: None,
        error: None,
    })
}

impl InBuilder {
    /// Runs `f`, turning a panic into a recorded error (these entry points
    /// return nothing, so the error surfaces at `call_primop`).
    fn guard(&mut self, f: impl FnOnce(&mut Self)) {
        if self.error.is_some() {
            return;
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(self))) {
            self.fail(format!(
                "internal error (Rust panic): {}",
                panic_message(&*p)
            ));
        }
    }

    fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    /// Where the next value goes, as an attribute path (`a.b[2]`).
    fn path(&self) -> String {
        let mut out = String::new();
        for f in &self.stack {
            match f {
                Frame::List(items, _) => out.push_str(&format!("[{}]", items.len())),
                Frame::Attrs(_, key, _) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key.as_deref().unwrap_or("?"));
                }
            }
        }
        out
    }

    fn utf8(&mut self, bytes: &[u8], what: &str) -> Option<String> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Some(s.to_owned()),
            Err(e) => {
                let at = self.path();
                let at = if at.is_empty() {
                    "the argument".to_string()
                } else {
                    format!("attribute '{at}'")
                };
                self.fail(format!(
                    "{what} in {at} is not valid UTF-8 ({e}): {:?}",
                    String::from_utf8_lossy(bytes)
                ));
                None
            }
        }
    }

    fn push(&mut self, v: Value) {
        if !self.pending_ctx.is_empty() && !matches!(v, Value::Str(_)) {
            self.fail("internal error: string context given for a non-string".into());
            return;
        }
        match self.stack.last_mut() {
            None => {
                if self.root.replace(v).is_some() {
                    self.fail("internal error: more than one root value".into());
                }
            }
            Some(Frame::List(items, _)) => items.push(v),
            Some(Frame::Attrs(map, key, _)) => match key.take() {
                Some(k) => {
                    map.insert(k, v);
                }
                None => self.fail("internal error: attribute value without a key".into()),
            },
        }
    }

    fn context(&mut self, elem: &[u8]) {
        self.guard(|b| {
            if let Some(e) = b.utf8(elem, "a string context element") {
                b.pending_ctx.insert(e);
            }
        });
    }

    fn string(&mut self, s: &[u8]) {
        self.guard(|b| {
            if let Some(s) = b.utf8(s, "a string") {
                let context = std::mem::take(&mut b.pending_ctx);
                b.push(Value::Str(NixString { s, context }));
            }
        });
    }

    fn null(&mut self) {
        self.guard(|b| b.push(Value::Null));
    }

    fn boolean(&mut self, v: bool) {
        self.guard(|b| b.push(Value::Bool(v)));
    }

    fn integer(&mut self, i: i64) {
        self.guard(|b| b.push(Value::Int(i)));
    }

    fn floating(&mut self, f: f64) {
        self.guard(|b| b.push(Value::Float(f)));
    }

    fn begin_list(&mut self, n: usize) {
        self.guard(|b| b.stack.push(Frame::List(Vec::with_capacity(n), n)));
    }

    fn begin_attrs(&mut self, n: usize) {
        self.guard(|b| b.stack.push(Frame::Attrs(BTreeMap::new(), None, n)));
    }

    fn key(&mut self, k: &[u8]) {
        self.guard(|b| {
            // Check the name before it becomes part of the path.
            let k = match std::str::from_utf8(k) {
                Ok(k) => k.to_owned(),
                Err(_) => {
                    let _ = b.utf8(k, "an attribute name");
                    return;
                }
            };
            match b.stack.last_mut() {
                Some(Frame::Attrs(_, key, _)) => *key = Some(k),
                _ => b.fail("internal error: attribute name outside an attrset".into()),
            }
        });
    }

    fn end(&mut self) {
        self.guard(|b| {
            let v = match b.stack.pop() {
                Some(Frame::List(items, n)) if items.len() == n => Value::List(items),
                Some(Frame::Attrs(map, None, n)) if map.len() == n => Value::Attrs(map),
                Some(_) => {
                    return b
                        .fail("internal error: wrong number of list or attrset elements".into())
                }
                None => return b.fail("internal error: unbalanced end()".into()),
            };
            b.push(v);
        });
    }

    /// The finished argument value.
    fn finish(self) -> Result<(Value, String), String> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.stack.is_empty() {
            return Err("internal error: unterminated list or attrset".into());
        }
        match self.root {
            Some(v) => Ok((v, self.store_dir)),
            None => Err("internal error: no argument value".into()),
        }
    }
}

// ---------------------------------------------------------------------------
// Primops.

/// Primops that exist only in plugin builds with the `test-primops` feature
/// (never in production): they let the integration tests provoke a Rust
/// panic inside a primop.
#[cfg(feature = "test-primops")]
static TEST_PRIMOPS: &[primops::PrimOp] = &[primops::PrimOp {
    name: "nixprocTestPanic",
    doc: "Test only: panics with the given message.",
    fun: |v| panic!("{}", v.as_str().unwrap_or("requested panic")),
}];
#[cfg(not(feature = "test-primops"))]
static TEST_PRIMOPS: &[primops::PrimOp] = &[];

/// The primop with registration index `index`.
fn primop(index: usize) -> Option<&'static primops::PrimOp> {
    PRIMOPS
        .get(index)
        .or_else(|| TEST_PRIMOPS.get(index.checked_sub(PRIMOPS.len())?))
}

fn primop_infos() -> Vec<PrimOpInfo> {
    catch_unwind(|| {
        PRIMOPS
            .iter()
            .chain(TEST_PRIMOPS)
            .map(|p| PrimOpInfo {
                name: p.name.to_string(),
                doc: p.doc.to_string(),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn call_primop(index: usize, arg: Box<InBuilder>) -> Result<Vec<OutNode>, String> {
    match catch_unwind(AssertUnwindSafe(|| run_primop(index, *arg))) {
        Ok(r) => r,
        Err(p) => {
            let name = primop(index).map_or("?", |p| p.name);
            Err(format!(
                "internal error (Rust panic): {name}: {}",
                panic_message(&*p)
            ))
        }
    }
}

fn run_primop(index: usize, arg: InBuilder) -> Result<Vec<OutNode>, String> {
    let op = primop(index).ok_or_else(|| format!("internal error: no primop number {index}"))?;
    let (input, store_dir) = arg.finish().map_err(|e| format!("{}: {e}", op.name))?;
    let ctx_index = context::collect(&input, &store_dir);
    let mut output = if index < PRIMOPS.len() {
        primops::call(op.name, &input)?
    } else {
        (op.fun)(&input).map_err(|e| format!("{}: {e}", op.name))?
    };
    context::attach(&mut output, &ctx_index, &store_dir);
    let mut tape = Vec::new();
    to_tape(output, String::new(), &mut tape);
    Ok(tape)
}

fn node(kind: Kind, key: String) -> OutNode {
    OutNode {
        kind,
        key,
        s: String::new(),
        ctx: Vec::new(),
        i: 0,
        f: 0.0,
        b: false,
        len: 0,
    }
}

/// Appends `v` to `tape` in pre-order.
fn to_tape(v: Value, key: String, tape: &mut Vec<OutNode>) {
    match v {
        Value::Null => tape.push(node(Kind::Null, key)),
        Value::Bool(b) => tape.push(OutNode {
            b,
            ..node(Kind::Bool, key)
        }),
        Value::Int(i) => tape.push(OutNode {
            i,
            ..node(Kind::Int, key)
        }),
        Value::Float(f) => tape.push(OutNode {
            f,
            ..node(Kind::Float, key)
        }),
        Value::Str(NixString { s, context }) => tape.push(OutNode {
            s,
            ctx: context.into_iter().collect(),
            ..node(Kind::Str, key)
        }),
        Value::List(items) => {
            tape.push(OutNode {
                len: items.len(),
                ..node(Kind::List, key)
            });
            for item in items {
                to_tape(item, String::new(), tape);
            }
        }
        Value::Attrs(map) => {
            tape.push(OutNode {
                len: map.len(),
                ..node(Kind::Attrs, key)
            });
            for (k, v) in map {
                to_tape(v, k, tape);
            }
        }
    }
}

/// The Rust half of one primop call without Nix, for the benchmarks
/// (`benches/conversion.rs`): replays `input` through the [`InBuilder`]
/// calls the C++ walker makes, runs primop `name` as `call_primop` does and
/// returns the number of output tape nodes. Not part of the plugin's API.
#[doc(hidden)]
pub fn bench_primop_call(name: &str, input: &Value, store_dir: &str) -> Result<usize, String> {
    let index = PRIMOPS
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| format!("no primop {name}"))?;
    let mut b = new_builder(store_dir.as_bytes());
    replay(input, &mut b);
    call_primop(index, b).map(|tape| tape.len())
}

/// Feeds `v` to `b` in the order the C++ walker does (attributes sorted).
#[doc(hidden)]
pub fn replay(v: &Value, b: &mut InBuilder) {
    match v {
        Value::Null => b.null(),
        Value::Bool(x) => b.boolean(*x),
        Value::Int(i) => b.integer(*i),
        Value::Float(f) => b.floating(*f),
        Value::Str(ns) => {
            for c in &ns.context {
                b.context(c.as_bytes());
            }
            b.string(ns.s.as_bytes());
        }
        Value::List(items) => {
            b.begin_list(items.len());
            items.iter().for_each(|x| replay(x, b));
            b.end();
        }
        Value::Attrs(map) => {
            b.begin_attrs(map.len());
            for (k, x) in map {
                b.key(k.as_bytes());
                replay(x, b);
            }
            b.end();
        }
    }
}

/// Builds the argument value from a replay, as `call_primop` sees it.
#[doc(hidden)]
pub fn bench_rebuild(input: &Value, store_dir: &str) -> Result<Value, String> {
    let mut b = new_builder(store_dir.as_bytes());
    replay(input, &mut b);
    b.finish().map(|(v, _)| v)
}

/// The output tape of `output` (what C++ turns into Nix values).
#[doc(hidden)]
pub fn bench_tape(output: Value) -> usize {
    let mut tape = Vec::new();
    to_tape(output, String::new(), &mut tape);
    tape.len()
}

// ---------------------------------------------------------------------------
// Version check.

fn version_mismatch_warning(running: &[u8], built: &[u8]) -> String {
    catch_unwind(|| mismatch_warning(running, built).unwrap_or_default())
        .unwrap_or_else(|_| "nixproc: internal error while checking the Nix version".into())
}

/// The plugin inlines code and struct layouts from the headers of exactly
/// one Nix version, so any other version (even a patch release) is refused.
pub fn mismatch_warning(running: &[u8], built: &[u8]) -> Option<String> {
    if running == built {
        return None;
    }
    Some(format!(
        "warning: the nixproc plugin was built for Nix {} but this is Nix {}; \
         its builtins are NOT registered (rebuild the plugin against this Nix; \
         nixproc falls back to builder mode)",
        String::from_utf8_lossy(built),
        String::from_utf8_lossy(running)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comparison_is_exact() {
        assert_eq!(mismatch_warning(b"2.8.0", b"2.8.0"), None);
        for other in [&b"2.8.1"[..], b"2.8", b"2.8.0pre", b"2.18.0", b""] {
            let w = mismatch_warning(other, b"2.8.0").expect("mismatch");
            assert!(w.contains("built for Nix 2.8.0"), "{w}");
            assert!(w.contains("NOT registered"), "{w}");
        }
        assert_eq!(version_mismatch_warning(b"2.8.0", b"2.8.0"), "");
    }

    fn build(f: impl FnOnce(&mut InBuilder)) -> Result<Value, String> {
        let mut b = new_builder(b"/nix/store");
        f(&mut b);
        b.finish().map(|(v, _)| v)
    }

    #[test]
    fn builder_rebuilds_nested_values() {
        let v = build(|b| {
            b.begin_attrs(2);
            b.key(b"a");
            b.begin_list(3);
            b.integer(1);
            b.floating(2.5);
            b.null();
            b.end();
            b.key(b"b");
            b.context(b"/nix/store/00000000000000000000000000000000-x");
            b.string(b"/nix/store/00000000000000000000000000000000-x/bin");
            b.end();
        })
        .unwrap();
        let a = v.as_attrs().unwrap();
        assert_eq!(
            a["a"],
            Value::List(vec![Value::Int(1), Value::Float(2.5), Value::Null])
        );
        match &a["b"] {
            Value::Str(s) => assert_eq!(s.context.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builder_reports_non_utf8_with_path() {
        let e = build(|b| {
            b.begin_attrs(1);
            b.key(b"name");
            b.string(b"\xff\xfe");
            b.end();
        })
        .unwrap_err();
        assert!(e.contains("attribute 'name'"), "{e}");
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn builder_reports_count_mismatch() {
        let e = build(|b| {
            b.begin_list(2);
            b.integer(1);
            b.end();
        })
        .unwrap_err();
        assert!(e.contains("internal error"), "{e}");
    }

    #[test]
    fn echo_through_tape() {
        let idx = PRIMOPS
            .iter()
            .position(|p| p.name == "nixprocEcho")
            .unwrap();
        let mut b = new_builder(b"/nix/store");
        b.begin_attrs(2);
        b.key(b"x");
        b.boolean(true);
        b.key(b"y");
        b.begin_list(0);
        b.end();
        b.end();
        let tape = call_primop(idx, b).unwrap();
        let kinds: Vec<_> = tape.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, vec![Kind::Attrs, Kind::Bool, Kind::List]);
        assert_eq!(tape[0].len, 2);
        assert_eq!(tape[1].key, "x");
        assert_eq!(tape[2].key, "y");
    }

    #[test]
    fn bad_index_is_an_error_not_a_panic() {
        let b = new_builder(b"/nix/store");
        let e = call_primop(usize::MAX, b).unwrap_err();
        assert!(e.contains("no primop"), "{e}");
    }
}
