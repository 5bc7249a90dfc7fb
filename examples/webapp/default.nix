# The example webapp (this directory's Rust crate), as a package with
# bin/webapp. The binary comes from `cargo build --release`
# (target/release/webapp) or from $NIXPROC_WEBAPP.
{ mkDerivation }:

let
  fromEnv = builtins.getEnv "NIXPROC_WEBAPP";
  inRepo = ../../target/release/webapp;
  binary =
    if fromEnv != "" then fromEnv
    else if builtins.pathExists inRepo then inRepo
    else throw "webapp: build it first with `cargo build --release` (or set NIXPROC_WEBAPP)";
in
mkDerivation {
  name = "webapp";
  links = [{
    path = "bin/webapp";
    target = "${builtins.path { path = binary; name = "webapp"; }}";
  }];
}
