# Wraps a generator's result (files, links, manifest entry) into a process
# package: something that behaves as a derivation (nix-build can build it on
# its own, other constructors take it in `dependencies`) and also carries
# the generated data, so that a profile can be assembled from the data
# without instantiating one derivation per process.
#
# `name` and `dependencyNames` are computed without running the generator:
# the profile checks the model's dependency graph from them first.
{ mkDerivation, system }:

{ name              # process name (cheap; equals spec.name)
, processManager
, dependencyNames   # names of the processes this one depends on (cheap)
, spec              # the primop's result: { name; files; links; manifest; passthru; }
, postInstall ? ""
, extraAttrs ? { }  # backend attributes exposed on the package (lazy thunks)
}:

let
  drv = mkDerivation {
    inherit (spec) files links;
    name = spec.name;
    inherit postInstall;
  };
  self = {
    type = "derivation";
    inherit name system;
    outputName = "out";
    outputs = [ "out" ];
    drvPath = drv.drvPath;
    outPath = drv.outPath;
    out = self;
    all = [ self ];
    drvAttrs = drv.drvAttrs or { };
    # What the profile builder and dependents read.
    nixproc = {
      inherit processManager spec postInstall;
      dependencies = dependencyNames;
    };
  } // extraAttrs;
in
self
