# String context through builtins.nixprocEcho: each returned string must
# carry exactly the context elements whose store path it mentions.
let
  f = import ./lib.nix;
  inherit (f) hello multi other somefile;
  input = {
    a = "${hello}/bin/hello";
    b = "no refs";
    c = "${somefile}";
    d = "${multi.bin}/bin/x";
    e = [ "uses ${other} and ${multi.dev}/include" ];
    drvPath = hello.drvPath;
    nested.deep = { x = "${hello}"; y = 1; };
    conf = "${hello}.conf";
  };
  r = builtins.nixprocEcho input;
  ctx = builtins.getContext;
  # Attribute names must not carry context.
  k = builtins.unsafeDiscardStringContext;
in
rec {
  got = {
    a = ctx r.a;
    b = ctx r.b;
    c = ctx r.c;
    d = ctx r.d;
    e = ctx (builtins.head r.e);
    drvPath = ctx r.drvPath;
    deep = ctx r.nested.deep.x;
    conf = ctx r.conf;
  };
  want = {
    a = { ${k hello.drvPath} = { outputs = [ "out" ]; }; };
    b = { };
    c = { ${k "${somefile}"} = { path = true; }; };
    d = { ${k multi.drvPath} = { outputs = [ "bin" ]; }; };
    e = { ${k other.drvPath} = { outputs = [ "out" ]; }; ${k multi.drvPath} = { outputs = [ "dev" ]; }; };
    drvPath = { ${k hello.drvPath} = { allOutputs = true; }; };
    deep = { ${k hello.drvPath} = { outputs = [ "out" ]; }; };
    conf = { ${k hello.drvPath} = { outputs = [ "out" ]; }; };
  };
  equal = builtins.mapAttrs (n: v: v == want.${n}) got;
  # Sanity: the input strings themselves carry what we expect to get back.
  inputCtx = builtins.mapAttrs (_: v: if builtins.isString v then ctx v else null) input;
}
