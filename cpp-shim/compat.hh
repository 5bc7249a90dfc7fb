// The one place that knows how the Nix C++ API differs between versions.
//
// NIX_VERSION_NUM = major*10000 + minor*100 + patch (set by build.rs).
// Rows follow shared/reference/nix-plugin-api.md §1.1. Only 2.8.0 is built and
// run on this project's machines; the other branches follow the table (which
// was syntax-checked against 2.9 – 2.30) and must be re-checked when a new
// Nix version is targeted.
//
// Everything here is header-only and used by plugin.cc only.
#pragma once

#ifndef NIX_VERSION_NUM
#error "NIX_VERSION_NUM must be defined (build.rs does it)"
#endif

// ---------------------------------------------------------------------------
// Config header and header paths.

#if NIX_VERSION_NUM < 22800
#  if NIX_VERSION_NUM >= 22400 && __has_include(<config-util.hh>)
     // meson builds (2.24 – 2.27)
#    include <config-util.hh>
#    include <config-store.hh>
#    include <config-expr.hh>
#  else
     // autotools builds: HAVE_BOEHMGC is ABI-relevant (sizeof(EvalState)).
#    include <config.h>
#  endif
#  include <eval.hh>
#  include <eval-inline.hh>
#  include <globals.hh>
#  include <primops.hh>
#  include <store-api.hh>
#  include <value.hh>
#else
#  include <nix/expr/eval.hh>
#  include <nix/expr/eval-inline.hh>
#  include <nix/expr/primops.hh>
#  include <nix/expr/value.hh>
#  include <nix/store/globals.hh>
#  include <nix/store/store-api.hh>
#endif

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace nixproc::compat {

// ---------------------------------------------------------------------------
// Positions and the primop function type.

#if NIX_VERSION_NUM < 20900
using PosArg = const nix::Pos &;
#else
using PosArg = const nix::PosIdx;
#endif

using PrimOpFn = void (*)(nix::EvalState &, PosArg, nix::Value **, nix::Value &);

// ---------------------------------------------------------------------------
// Errors.

// Throws a ThrownError (which builtins.tryEval catches) at `pos`. `msg` is
// literal text, never a format string.
[[noreturn]] inline void throwThrown(nix::EvalState & state, PosArg pos, const std::string & msg)
{
#if NIX_VERSION_NUM < 20900
    (void) state;
    throw nix::ThrownError({.level = nix::lvlError, .msg = nix::hintfmt(msg), .errPos = pos});
#elif NIX_VERSION_NUM < 21300 || (NIX_VERSION_NUM >= 21301 && NIX_VERSION_NUM < 21400)
    throw nix::ThrownError({.level = nix::lvlError, .msg = nix::hintfmt(msg), .errPos = state.positions[pos]});
#elif NIX_VERSION_NUM < 22100
    state.error("%s", msg).atPos(pos).template debugThrow<nix::ThrownError>();
    std::abort(); // not reached
#else
    state.error<nix::ThrownError>("%s", msg).atPos(pos).debugThrow();
#endif
}

// Adds "while …" context to an error raised while forcing the argument
// (Nix ≥ 2.14 mostly does this itself through errorCtx parameters).
inline void addTrace(nix::Error & e, nix::EvalState & state, PosArg pos, const std::string & what)
{
#if NIX_VERSION_NUM < 20900
    (void) state;
    e.addTrace(nix::ErrPos(pos), nix::hintfmt(what));
#elif NIX_VERSION_NUM < 21300
    e.addTrace(state.positions[pos], nix::hintfmt(what));
#else
    (void) e; (void) state; (void) pos; (void) what;
#endif
}

// ---------------------------------------------------------------------------
// Store.

inline std::string storeDir(nix::EvalState & state)
{
    return state.store->storeDir;
}

// ---------------------------------------------------------------------------
// String context: always handed to Rust in its encoded form
// (`/nix/store/h-n`, `=/nix/store/h-n.drv`, `!out!/nix/store/h-n.drv`).

#if NIX_VERSION_NUM < 21600
using Context = nix::PathSet;
inline void contextInsert(Context & c, std::string_view s) { c.insert(std::string(s)); }
template <class F> void contextEach(const Context & c, F && f)
{
    for (auto & s : c) f(std::string_view(s));
}
#else
using Context = nix::NixStringContext;
inline void contextInsert(Context & c, std::string_view s) { c.insert(nix::NixStringContextElem::parse(s)); }
template <class F> void contextEach(const Context & c, F && f)
{
    for (auto & e : c) {
        auto s = e.to_string();
        f(std::string_view(s));
    }
}
#endif

// ---------------------------------------------------------------------------
// Reading forced values.

inline int64_t getInt(const nix::Value & v)
{
#if NIX_VERSION_NUM < 22200
    return v.integer;
#elif NIX_VERSION_NUM < 22500
    return v.integer();
#else
    return v.integer().value;
#endif
}

inline bool getBool(const nix::Value & v)
{
#if NIX_VERSION_NUM < 22200
    return v.boolean;
#else
    return v.boolean();
#endif
}

inline double getFloat(const nix::Value & v)
{
#if NIX_VERSION_NUM < 22200
    return v.fpoint;
#else
    return v.fpoint();
#endif
}

// Calls `ctx(elem)` for each context element, then returns the string of an
// already forced nString value.
template <class F>
std::string_view readString(nix::EvalState & state, nix::Value & v, PosArg pos, Context & scratch, F && ctx)
{
#if NIX_VERSION_NUM < 21400
    (void) state; (void) pos; (void) scratch;
    if (v.string.context)
        for (const char ** p = v.string.context; *p; ++p) ctx(std::string_view(*p));
    return std::string_view(v.string.s);
#else
    scratch.clear();
    auto s = state.forceString(v, scratch, pos, "while converting a string for nixproc");
    contextEach(scratch, ctx);
    return s;
#endif
}

// "${v}" for paths (copied to the store) and derivations (their outPath).
inline std::string coerceToStoreString(nix::EvalState & state, nix::Value & v, PosArg pos, Context & ctx)
{
#if NIX_VERSION_NUM < 21300
    return std::string(*state.coerceToString(pos, v, ctx, false, true, true));
#elif NIX_VERSION_NUM < 21301
    return std::string(*state.coerceToString(pos, v, ctx, false, true, true, "while converting a value for nixproc"));
#elif NIX_VERSION_NUM < 21400
    return std::string(*state.coerceToString(pos, v, ctx, false, true, true));
#else
    return std::string(*state.coerceToString(pos, v, ctx, "while converting a value for nixproc", false, true, true));
#endif
}

inline std::string_view attrName(nix::EvalState & state, const nix::Attr & a)
{
#if NIX_VERSION_NUM < 20900
    (void) state;
    return std::string_view((const std::string &) a.name);
#else
    return std::string_view(state.symbols[a.name]);
#endif
}

inline auto sortedAttrs(nix::EvalState & state, const nix::Value & v)
{
#if NIX_VERSION_NUM < 20900
    (void) state;
    return v.attrs->lexicographicOrder();
#elif NIX_VERSION_NUM < 22200
    return v.attrs->lexicographicOrder(state.symbols);
#else
    return v.attrs()->lexicographicOrder(state.symbols);
#endif
}

inline size_t attrCount(const nix::Value & v)
{
#if NIX_VERSION_NUM < 22200
    return v.attrs->size();
#else
    return v.attrs()->size();
#endif
}

template <class F> void listEach(nix::Value & v, F && f)
{
#if NIX_VERSION_NUM < 23000
    auto elems = v.listElems();
    for (size_t i = 0, n = v.listSize(); i < n; ++i) f(*elems[i]);
#else
    for (auto * e : v.listView()) f(*e);
#endif
}

inline size_t listSize(const nix::Value & v) { return v.listSize(); }

// ---------------------------------------------------------------------------
// Building values. Every child Value is linked into its (GC-reachable)
// parent before it is filled, so no GC pointer lives outside GC memory or
// the C++ stack.

// Makes `v` a list of `n` fresh values and calls `fill(i, child)` for each.
template <class F> void buildList(nix::EvalState & state, nix::Value & v, size_t n, F && fill)
{
#if NIX_VERSION_NUM < 22200
    state.mkList(v, n);
    for (size_t i = 0; i < n; ++i) {
        nix::Value * child = state.allocValue();
        v.listElems()[i] = child;
        fill(i, *child);
    }
#else
    auto list = state.buildList(n);
    for (size_t i = 0; i < n; ++i) {
        nix::Value * child = state.allocValue();
        list[i] = child;
        fill(i, *child);
    }
    v.mkList(list);
#endif
}

// Makes `v` a string; `ctx` is a container of encoded context elements
// exposing size() and iteration over something string_view-convertible.
template <class C> void mkString(nix::EvalState & state, nix::Value & v, std::string_view s, const C & ctx)
{
    if (ctx.size() == 0) {
#if NIX_VERSION_NUM < 23300
        (void) state;
        v.mkString(s);
#else
        v.mkString(s, state.mem);
#endif
        return;
    }
    Context c;
    for (auto & e : ctx) contextInsert(c, std::string_view(e.data(), e.size()));
#if NIX_VERSION_NUM < 23300
    v.mkString(s, c);
#else
    v.mkString(s, c, state.mem);
#endif
}

// ---------------------------------------------------------------------------
// Registration. `doc` must stay alive forever (plugin.cc leaks a copy).

inline void registerPrimOp(const std::string & name, const char * doc, PrimOpFn fun)
{
#if NIX_VERSION_NUM < 21700
    new nix::RegisterPrimOp(nix::RegisterPrimOp::Info{
        .name = name,
        .args = {"args"},
        .arity = 1,
        .doc = doc,
        .fun = fun,
    });
#elif NIX_VERSION_NUM < 23400
    new nix::RegisterPrimOp(nix::PrimOp{
        .name = name,
        .args = {"args"},
        .arity = 1,
        .doc = doc,
        .fun = fun,
    });
#else
    new nix::RegisterPrimOp(nix::PrimOp{
        .name = name,
        .args = {"args"},
        .arity = 1,
        .doc = std::string(doc),
        .impl = fun,
    });
#endif
}

inline const std::string & runningNixVersion() { return nix::nixVersion; }

} // namespace nixproc::compat
