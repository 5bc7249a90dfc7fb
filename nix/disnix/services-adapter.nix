# A processes model as a Disnix services model (reference §4.5, §3.8.3).
#
# Every instance `<key> = { pkg; … }` of the processes model becomes the
# Disnix service
#
#   <key> = <the instance's attributes> // {
#     name = "<key>";
#     type = "<Dysnomia module of the process manager>";  # disnix → "process"
#     activatesAfter = { <dependency key> = services.<dependency key>; … };
#     dependsOn = { };
#   };
#
# Dependencies are the process packages' own (`pkg.nixproc.dependencies`,
# names), mapped back to instance keys, so keys need not equal process
# names (defect 28 of the original). They go to `activatesAfter`, not
# `dependsOn`: a processes model's `pkg` is already built with its
# dependencies, and Disnix calls `pkg` as a function of its `dependsOn`
# services.
#
# Use it in a Disnix services expression (see README.md next to this file):
#
#   { system, distribution, invDistribution, pkgs }:
#   import <nixproc/disnix/services-adapter.nix> {
#     exprFile = ./processes.nix;
#     stateDir = "/var";
#   }
#
# Arguments: `exprFile` (the processes model), `processManager` (default
# "disnix"; any nixproc backend, the type follows it), `extraParams`, and
# whatever the model declares (stateDir, runtimeDir, forceDisableUserChange,
# …) — forwarded like `nixproc build` does: only the ones passed explicitly,
# restricted to the model's formals, so the model's own defaults apply to
# the rest.
args@{ exprFile
, processManager ? "disnix"
, extraParams ? { }
, ...
}:

let
  # Reference §4.5.
  dysnomiaTypes = {
    sysvinit = "sysvinit-script";
    systemd = "systemd-unit";
    supervisord = "supervisord-program";
    bsdrc = "bsdrc-script";
    cygrunsrv = "cygrunsrv-service";
    launchd = "launchd-daemon";
    disnix = "process";
    docker = "docker-container";
    s6-rc = "s6-rc-service";
  };

  type =
    if processManager == null then "managed-process"
    else dysnomiaTypes.${processManager} or (throw
      "nixproc services-adapter: no Dysnomia module for process manager '${toString processManager}' (known: ${toString (builtins.attrNames dysnomiaTypes)})");

  fun = import exprFile;
  passed = removeAttrs args [ "exprFile" "extraParams" ]
    // { inherit processManager; } // extraParams;
  model =
    if builtins.isFunction fun then fun (builtins.intersectAttrs (builtins.functionArgs fun) passed)
    else fun;

  checkedModel =
    if builtins.isAttrs model then model
    else throw "nixproc services-adapter: the processes model ${toString exprFile} must evaluate to an attribute set of instances, but it is a ${builtins.typeOf model}";

  keys = builtins.attrNames checkedModel;

  instance = key:
    let inst = checkedModel.${key}; in
    if !(builtins.isAttrs inst && inst ? pkg) then
      throw "nixproc services-adapter: instance '${key}' of the processes model has no 'pkg' attribute"
    else if !(builtins.isAttrs inst.pkg && inst.pkg ? nixproc) then
      throw "nixproc services-adapter: instance '${key}': 'pkg' is not a nixproc process package"
    else inst;

  # Process name → instance key.
  keyOfName = builtins.listToAttrs (map
    (key: { name = (instance key).pkg.name; value = key; })
    keys);

  dependencyKeys = key:
    map
      (dep: keyOfName.${dep} or (throw
        "nixproc services-adapter: instance '${key}' depends on process '${dep}', which is not in the processes model"))
      (instance key).pkg.nixproc.dependencies;

  services = builtins.listToAttrs (map
    (key: {
      name = key;
      value = instance key // {
        name = key;
        inherit type;
        dependsOn = { };
        activatesAfter = builtins.listToAttrs (map
          (dep: { name = dep; value = services.${dep}; })
          (dependencyKeys key));
      };
    })
    keys);
in
# The type first: an unknown process manager is named as such, not by
# whatever the model fails on with it.
builtins.seq type services
