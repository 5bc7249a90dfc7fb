# Fixtures for the plugin's integration tests (rust/nixproc-plugin/tests):
# tiny derivations that are instantiated, never built.
let
  mk = attrs: derivation ({
    system = builtins.currentSystem;
    builder = "/bin/sh";
  } // attrs);
in
{
  hello = mk {
    name = "hello";
    args = [ "-c" "echo > $out" ];
  };
  other = mk {
    name = "other";
    args = [ "-c" "echo other > $out" ];
  };
  multi = mk {
    name = "multi";
    outputs = [ "out" "bin" "dev" ];
    args = [ "-c" "echo > $out; echo > $bin; echo > $dev" ];
  };
  somefile = ./somefile.nix;
}
