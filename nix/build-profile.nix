# Builds a profile: every process package of a processes model merged into
# one store path, plus nix-support/nixproc/manifest.json for the deploy
# engine. Called by `nixproc build` (like nix-processmgmt's
# build-<pm>-env.nix).
#
# Argument forwarding (compatible with nix-processmgmt): the processes
# function receives only the arguments that were *explicitly* passed here
# (plus processManager and extraParams), restricted to the ones it declares;
# its own defaults apply to the rest.
args@{ exprFile ? null
, processManager ? "sysvinit"
, extraParams ? { }
, ...
}:

let
  lib = import ./lib;

  supported = builtins.attrNames nixproc.compositions;

  nixproc = import ./. (builtins.intersectAttrs
    (builtins.functionArgs (import ./.))
    (removeAttrs args [ "exprFile" "extraParams" ] // { inherit processManager; }));

  model =
    if exprFile == null then { }
    else
      let
        fun = import exprFile;
        passed = removeAttrs args [ "exprFile" "extraParams" ]
          // { inherit processManager; } // extraParams;
        formals = builtins.functionArgs fun;
      in
      if builtins.isFunction fun then fun (builtins.intersectAttrs formals passed)
      else fun;

  checkedModel =
    if !(builtins.elem processManager supported) then
      throw "nixproc: unknown or not yet supported process manager '${processManager}' (supported: ${toString supported})"
    else if !(builtins.isAttrs model) then
      throw "nixproc: the processes model ${toString exprFile} must evaluate to an attribute set of instances, but it is a ${builtins.typeOf model}"
    else model;

  keys = builtins.attrNames checkedModel;

  instanceOf = key:
    let inst = checkedModel.${key}; in
    if !(builtins.isAttrs inst) then
      throw "nixproc: instance '${key}' of the processes model must be an attribute set with a 'pkg' attribute, but it is a ${builtins.typeOf inst}"
    else if !(inst ? pkg) then
      throw "nixproc: instance '${key}' of the processes model has no 'pkg' attribute (the process package)"
    else if !(builtins.isAttrs inst.pkg && inst.pkg ? nixproc) then
      throw "nixproc: instance '${key}': 'pkg' is not a nixproc process package (make it with createManagedProcess or a backend's create function such as createSystemVInitScript)"
    else if inst.pkg.nixproc.processManager != processManager then
      throw "nixproc: instance '${key}' is a ${inst.pkg.nixproc.processManager} process, but the profile is built for ${processManager}"
    else { inherit key; inherit (inst) pkg; };

  instances = map instanceOf keys;

  # Names, dependencies, cycles and duplicates are checked before any
  # generator runs (see lib.processName).
  order = (nixproc.prim.nixprocCheckModel {
    instances = map
      (i: {
        inherit (i) key;
        name = i.pkg.name;
        dependencies = i.pkg.nixproc.dependencies;
      })
      instances;
  }).order;

  byKey = builtins.listToAttrs (map (i: { name = i.key; value = i; }) instances);
  ordered = map (k: byKey.${k}) order;

  specOf = i: i.pkg.nixproc.spec;

  # Backend files of the profile root (supervisord.conf, the s6-rc default
  # bundle).
  extras = nixproc.prim.nixprocProfileExtras {
    inherit processManager;
    composition = nixproc.compositions.${processManager};
    services = map (i: i.pkg.name) ordered;
  };

  manifest = {
    version = 1;
    inherit processManager;
    instances = map (i: (specOf i).manifest // { inherit (i) key; }) ordered;
  };
in
builtins.seq order (nixproc.mkDerivation {
  name = "nixproc-${processManager}-profile";
  files = lib.concatMap (i: (specOf i).files) ordered ++ extras.files ++ [{
    path = "nix-support/nixproc/manifest.json";
    text = builtins.toJSON manifest;
    mode = 292;
  }];
  links = lib.concatMap (i: (specOf i).links) ordered;
  # Each package's postInstall runs with $out = the profile, which yields
  # the same tree as merging separately built packages.
  postInstall = builtins.concatStringsSep "\n"
    (builtins.filter (s: s != "") (map (i: i.pkg.nixproc.postInstall) ordered));
})
