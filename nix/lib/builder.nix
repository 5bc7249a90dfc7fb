# The static `nixproc-builder` binary as a store path. It builds every
# derivation of the framework (no nixpkgs, no shell needed) and is the
# run-time helper of generated init scripts (start-daemon, daemonize, …).
#
# Found through, in order: $NIXPROC_BUILDER (set by the `nixproc` CLI), the
# repository's build output next to this directory.
let
  fromEnv = builtins.getEnv "NIXPROC_BUILDER";
  inRepo = ../../target/release/nixproc-builder;
  source =
    if fromEnv != "" then fromEnv
    else if builtins.pathExists inRepo then inRepo
    else throw ''
      nixproc: cannot find the static nixproc-builder binary.
      Build it with `scripts/build.sh` (it runs `cargo build --release` and the
      static builder build), or point NIXPROC_BUILDER at it.'';
in
builtins.path { path = source; name = "nixproc-builder"; }
