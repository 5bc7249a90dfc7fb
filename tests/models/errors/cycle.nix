{ stateDir }:
let
  nixproc = import <nixproc> { inherit stateDir; };
  mk = name: deps: nixproc.createSystemVInitScript { instanceName = name; process = "/bin/true"; dependencies = deps; };
in
rec {
  a.pkg = mk "a" [ c.pkg ];
  b.pkg = mk "b" [ a.pkg ];
  c.pkg = mk "c" [ b.pkg ];
}
