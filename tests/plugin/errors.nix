# Error cases; select one with -A. Line numbers are checked by the tests.
let
  f = import ./lib.nix;
in
{
  primop = builtins.createSystemVInitScript 3;
  tryPrimop = builtins.tryEval (builtins.createSystemVInitScript 3);
  function = builtins.nixprocEcho { a.b = [ 1 (x: x) ]; };
  tryFunction = builtins.tryEval (builtins.nixprocEcho { g = x: x; });
  rootFunction = builtins.nixprocEcho (x: x);
  cyclic = builtins.nixprocEcho (let r = { self = r; }; in r);
  tryCyclic = builtins.tryEval (builtins.nixprocEcho (let r = { self = r; }; in r));
  throwInside = builtins.nixprocEcho { a = throw "boom from nix"; };
  tryThrowInside = builtins.tryEval (builtins.nixprocEcho { a = throw "boom from nix"; });
  afterErrors = [
    (builtins.tryEval (builtins.createSystemVInitScript 3)).success
    (builtins.nixprocEcho { ok = f.hello; })
  ];
  deepButFine = builtins.nixprocEcho (builtins.foldl' (acc: _: { x = acc; }) 0 (builtins.genList (x: x) 60));
  tooDeep = builtins.nixprocEcho (builtins.foldl' (acc: _: [ acc ]) 0 (builtins.genList (x: x) 70));
}
