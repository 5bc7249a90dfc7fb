# Every value type through builtins.nixprocEcho.
let
  f = import ./lib.nix;
  input = {
    int = 42;
    neg = -7;
    big = 9223372036854775807;
    float = 1.5;
    t = true;
    f = false;
    n = null;
    s = "héllo \"quoted\"\n\ttab \${x} ✓";
    empty = "";
    list = [ 1 2.5 true null "s" [ ] { } [ [ 1 ] ] ];
    nested = { a.b.c = [ { d = 1; } "x" ]; "weird key" = 1; "with.dot" = 2; "" = 3; };
    path = ./somefile.nix;
    drv = f.hello;
    bin = f.multi.bin;
    inList = [ f.other ./somefile.nix ];
  };
  r = builtins.nixprocEcho input;
in
{
  inherit r;
  types = map builtins.typeOf r.list;
  rootTypes = builtins.mapAttrs (_: builtins.typeOf) r;
  names = builtins.attrNames r.nested;
  sameAsInput = removeAttrs r [ "path" "drv" "bin" "inList" ]
    == removeAttrs input [ "path" "drv" "bin" "inList" ];
  drvIsOutPath = r.drv == f.hello.outPath;
  binIsBinOutPath = r.bin == f.multi.bin.outPath;
  inListOther = builtins.head r.inList == f.other.outPath;
  pathIsStorePath = r.path == "${./somefile.nix}";
  scalars = map builtins.nixprocEcho [ 1 "x" null true 2.5 [ ] { } ];
}
