// The C++ half of the nixproc plugin: registers the Rust primops with Nix,
// walks Nix values into Rust and rebuilds Nix values from Rust's answer.
//
// Rules (see shared/reference/nix-plugin-api.md §3):
// - Every Nix call (which may throw) runs in C++ frames; Rust never sees a C++
//   exception and C++ never sees a Rust panic (Rust catches its own).
// - No Value*/Bindings* is kept in statics, Rust memory or malloc memory: the
//   Boehm GC scans neither (GC_set_no_dls). Pointers live on the C++ stack or
//   are linked into GC memory at once.
// - registration runs from a Rust ELF constructor, before this file's
//   namespace-scope initialisers: only function-local statics are used.
// No generation logic lives here.

#include "cpp-shim/compat.hh"
#include "cpp-shim/shim.h"
#include "rust/cxx.h"
#include "nixproc-plugin/src/lib.rs.h"

#include <array>
#include <cstdint>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#ifndef NIXPROC_NIX_VERSION
#error "NIXPROC_NIX_VERSION must be defined (build.rs does it)"
#endif

namespace nixproc {

namespace {

using compat::PosArg;

constexpr size_t kMaxDepth = 64;
// Nix ≤ 2.21 primops are plain function pointers without user data, so each
// registered primop gets its own trampoline instance; this is their number.
constexpr size_t kMaxPrimOps = 128;

struct Registry
{
    std::vector<std::string> names; // index = Rust registry index
};

Registry & registry()
{
    static Registry r;
    return r;
}

rust::Slice<const uint8_t> bytes(std::string_view s)
{
    return rust::Slice<const uint8_t>(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

// One element of the attribute path of the value being walked.
struct PathElem
{
    std::string_view key; // attribute name (symbol storage outlives the walk)
    size_t index;         // list index if key is empty
    bool isIndex;
};

// Walks a Nix value into an InBuilder.
class Walker
{
public:
    Walker(nix::EvalState & state, PosArg pos, InBuilder & out, const std::string & primop)
        : state(state), pos(pos), out(out), primop(primop)
    {
    }

    void walk(nix::Value & v, size_t depth)
    {
        if (depth > kMaxDepth)
            fail("value nested too deeply (more than " + std::to_string(kMaxDepth) +
                 " levels; is it cyclic?)");
        state.forceValue(v, pos);
        switch (v.type()) {
        case nix::nNull:
            out.null();
            break;
        case nix::nBool:
            out.boolean(compat::getBool(v));
            break;
        case nix::nInt:
            out.integer(compat::getInt(v));
            break;
        case nix::nFloat:
            out.floating(compat::getFloat(v));
            break;
        case nix::nString: {
            auto s = compat::readString(state, v, pos, scratch,
                [&](std::string_view elem) { out.context(bytes(elem)); });
            out.string(bytes(s));
            break;
        }
        case nix::nPath:
            coerced(v);
            break;
        case nix::nAttrs:
            if (state.isDerivation(v)) {
                coerced(v);
                break;
            }
            out.begin_attrs(compat::attrCount(v));
            for (auto * attr : compat::sortedAttrs(state, v)) {
                auto name = compat::attrName(state, *attr);
                out.key(bytes(name));
                path.push_back({name, 0, false});
                walk(*attr->value, depth + 1);
                path.pop_back();
            }
            out.end();
            break;
        case nix::nList: {
            out.begin_list(compat::listSize(v));
            size_t i = 0;
            compat::listEach(v, [&](nix::Value & elem) {
                path.push_back({{}, i++, true});
                walk(elem, depth + 1);
                path.pop_back();
            });
            out.end();
            break;
        }
        case nix::nFunction:
            fail("cannot pass a function to " + primop);
        case nix::nExternal:
            fail("cannot pass an external value to " + primop);
        default:
            fail("cannot convert a value of this type for " + primop);
        }
    }

private:
    nix::EvalState & state;
    PosArg pos;
    InBuilder & out;
    const std::string & primop;
    std::vector<PathElem> path;
    compat::Context scratch;

    void coerced(nix::Value & v)
    {
        compat::Context ctx;
        std::string s = compat::coerceToStoreString(state, v, pos, ctx);
        compat::contextEach(ctx, [&](std::string_view elem) { out.context(bytes(elem)); });
        out.string(bytes(s));
    }

    std::string where() const
    {
        if (path.empty()) return "the argument itself";
        std::string p;
        size_t shown = 0;
        for (auto & e : path) {
            if (++shown > 12) {
                p += "…";
                break;
            }
            if (e.isIndex) {
                p += "[" + std::to_string(e.index) + "]";
            } else {
                if (!p.empty()) p += ".";
                p += e.key;
            }
        }
        return "attribute '" + p + "'";
    }

    [[noreturn]] void fail(const std::string & what)
    {
        compat::throwThrown(state, pos, "nixproc: " + what + " (at " + where() + ")");
    }
};

// Rebuilds tape[i..] into v; returns the index after the subtree.
size_t fromTape(nix::EvalState & state, const rust::Vec<OutNode> & tape, size_t i, nix::Value & v)
{
    if (i >= tape.size()) throw nix::Error("nixproc: internal error: truncated result tape");
    const OutNode & n = tape[i];
    switch (n.kind) {
    case Kind::Null:
        v.mkNull();
        return i + 1;
    case Kind::Bool:
        v.mkBool(n.b);
        return i + 1;
    case Kind::Int:
        v.mkInt(n.i);
        return i + 1;
    case Kind::Float:
        v.mkFloat(n.f);
        return i + 1;
    case Kind::Str:
        compat::mkString(state, v, std::string_view(n.s.data(), n.s.size()), n.ctx);
        return i + 1;
    case Kind::List: {
        size_t next = i + 1;
        compat::buildList(state, v, n.len,
            [&](size_t, nix::Value & child) { next = fromTape(state, tape, next, child); });
        return next;
    }
    case Kind::Attrs: {
        auto attrs = state.buildBindings(n.len);
        size_t next = i + 1;
        for (size_t k = 0; k < n.len; ++k) {
            if (next >= tape.size()) throw nix::Error("nixproc: internal error: truncated result tape");
            const rust::String & key = tape[next].key;
            nix::Value & child = attrs.alloc(std::string_view(key.data(), key.size()));
            next = fromTape(state, tape, next, child);
        }
        v.mkAttrs(attrs);
        return next;
    }
    }
    throw nix::Error("nixproc: internal error: unknown node kind in result tape");
}

void callPrimOp(size_t index, nix::EvalState & state, PosArg pos, nix::Value ** args, nix::Value & v)
{
    const std::string & name = registry().names[index];
    nix::Value & arg = *args[0];

    auto builder = new_builder(bytes(compat::storeDir(state)));
    try {
        Walker(state, pos, *builder, name).walk(arg, 0);
    } catch (nix::Error & e) {
        compat::addTrace(e, state, pos, "while evaluating the argument passed to builtins." + name);
        throw;
    }

    rust::Vec<OutNode> tape;
    try {
        tape = call_primop(index, std::move(builder));
    } catch (const rust::Error & e) {
        compat::throwThrown(state, pos, std::string("nixproc: ") + e.what());
    }
    fromTape(state, tape, 0, v);
}

template <size_t I>
void primOpTrampoline(nix::EvalState & state, PosArg pos, nix::Value ** args, nix::Value & v)
{
    callPrimOp(I, state, pos, args, v);
}

template <size_t... I>
constexpr std::array<compat::PrimOpFn, sizeof...(I)> makeTrampolines(std::index_sequence<I...>)
{
    return {&primOpTrampoline<I>...};
}

} // namespace

void register_primops()
{
    static bool done = false;
    if (done) return;
    done = true;
    try {
        const std::string & running = compat::runningNixVersion();
        auto warning = version_mismatch_warning(bytes(running), bytes(NIXPROC_NIX_VERSION));
        if (!warning.empty()) {
            std::cerr << std::string(warning) << std::endl;
            return;
        }

        static constexpr auto trampolines = makeTrampolines(std::make_index_sequence<kMaxPrimOps>{});
        auto infos = primop_infos();
        auto & names = registry().names;
        for (auto & info : infos) {
            std::string name(info.name);
            if (names.size() >= kMaxPrimOps) {
                std::cerr << "warning: nixproc: too many primops, not registering builtins." << name
                          << " (raise kMaxPrimOps in cpp-shim/plugin.cc)" << std::endl;
                continue;
            }
            std::string doc(info.doc);
            // Nix keeps the doc pointer forever.
            const char * docCopy = strdup(doc.c_str());
            // "__name" puts the primop under builtins only: a plain name would
            // also become a global that shadows `with …;` attributes of the
            // same name (e.g. nix-processmgmt's createSystemVInitScript).
            std::string nixName = name.rfind("__", 0) == 0 ? name : "__" + name;
            size_t index = names.size();
            names.push_back(name);
            compat::registerPrimOp(nixName, docCopy, trampolines[index]);
        }
    } catch (const std::exception & e) {
        std::cerr << "warning: nixproc: registering the plugin's builtins failed: " << e.what() << std::endl;
    } catch (...) {
        std::cerr << "warning: nixproc: registering the plugin's builtins failed" << std::endl;
    }
}

} // namespace nixproc
