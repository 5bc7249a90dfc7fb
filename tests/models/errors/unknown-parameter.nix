{ stateDir }:
let nixproc = import <nixproc> { inherit stateDir; }; in
{ broken.pkg = nixproc.createSystemVInitScript { instanceName = "broken"; process = "/bin/true"; runlevel = [ 3 ]; }; }
