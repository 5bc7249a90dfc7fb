{ stateDir }:
let nixproc = import <nixproc> { inherit stateDir; }; in
{ broken.pkg = nixproc.createSystemVInitScript { process = "/bin/true"; }; }
