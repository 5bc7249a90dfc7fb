// What the cxx-generated glue sees of the C++ side: no Nix headers here.
#pragma once

namespace nixproc {

// Registers every nixproc primop with Nix (called once, from a Rust ELF
// constructor when Nix dlopens the plugin). Never throws.
void register_primops();

} // namespace nixproc
