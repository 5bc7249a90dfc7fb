{ stateDir }:
let
  nixproc = import <nixproc> { inherit stateDir; };
  mk = name: nixproc.createSystemVInitScript { instanceName = name; process = "/bin/true"; };
in
{
  first.pkg = mk "webapp";
  second.pkg = mk "webapp";
}
