# Many round trips of a nested value; run with a tiny initial GC heap so that
# collections happen during conversion.
{ n ? 5000 }:
let
  f = import ./lib.nix;
  mk = i: {
    inherit i;
    s = "item-${toString i}";
    l = [ i (i * 2) 0.5 { x = "${f.hello}/${toString i}"; } null ];
    nested.deep.er = [ "a" "b" { c = i; } ];
  };
  check = i:
    let
      v = mk i;
      r = builtins.nixprocEcho v;
    in
    r == v
    && builtins.getContext (builtins.elemAt r.l 3).x
      == { ${builtins.unsafeDiscardStringContext f.hello.drvPath} = { outputs = [ "out" ]; }; }
    && !(builtins.hasContext r.s);
  results = builtins.genList check n;
in
{
  ok = builtins.all (x: x) results;
  count = builtins.length results;
  failures = builtins.length (builtins.filter (x: !x) results);
}
