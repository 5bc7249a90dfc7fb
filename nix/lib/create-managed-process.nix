# createManagedProcess (reference §4): one process description, any backend.
#
# Attrset overrides (`overrides.<pm> = { … }`) are deep-merged by the
# `createManagedProcess` primop. An override *function* cannot enter Rust,
# so then the arguments are translated first
# (`nixprocTranslateManagedProcess`), the function is applied here, and the
# backend's own primop generates the package. Both paths agree.
#
# With `processManager = null` the process is not generated for any backend:
# the agnostic config writer (lib/agnostic-config.nix) records the
# arguments as JSON for `nixproc generate-config` (reference §4.4).
{ lib, prim, processManager, backends, agnosticConfig }:

args:

if processManager == null then agnosticConfig args else

let
  caller = "createManagedProcess";
  backend = backends.${processManager} or (throw
    "nixproc: createManagedProcess: process manager '${processManager}' is not supported (supported: ${toString (builtins.attrNames backends)})");

  overrides = args.overrides or { };
  checkedOverrides =
    if !(builtins.isAttrs overrides) then
      throw "nixproc: createManagedProcess: 'overrides' must be a set { <processManager> = set or function; }, but it is a ${builtins.typeOf overrides}"
    else builtins.mapAttrs
      (pm: o:
        if !(builtins.elem pm lib.processManagers) then
          throw "nixproc: createManagedProcess: overrides.${pm}: '${pm}' is not a process manager (one of: ${toString lib.processManagers})"
        else if !(builtins.isAttrs o || builtins.isFunction o) then
          throw "nixproc: createManagedProcess: overrides.${pm} must be a set (merged into the generated arguments) or a function (applied to them), but it is a ${builtins.typeOf o}"
        else o)
      overrides;
  override = checkedOverrides.${processManager} or { };

  dependencies = args.dependencies or [ ];
  common = removeAttrs args [ "overrides" "dependencies" ] // {
    inherit processManager;
    dependencies = map (backend.dependencyInfoChecked caller) dependencies;
  };

  # Functions for other backends are dropped: Rust cannot receive them.
  plainOverrides = builtins.mapAttrs (_: o: if builtins.isFunction o then { } else o) checkedOverrides;

  viaFunction =
    let
      translated = prim.nixprocTranslateManagedProcess (backend.composition // common);
      final = override translated;
    in
    if !(builtins.isAttrs final) then
      throw "nixproc: createManagedProcess: the overrides.${processManager} function must return a set of ${processManager} arguments, but it returned a ${builtins.typeOf final}"
    else if (final.name or null) != translated.name then
      throw "nixproc: createManagedProcess: the overrides.${processManager} function must not change 'name' (dependents and the profile refer to the process by name)"
    else {
      args = final // { inherit dependencies; postInstall = final.postInstall or ""; };
      spec = prim.${backend.primopName} (backend.composition // final);
      name = backend.nameOf (backend.composition // final);
    };

  viaAttrset = {
    args = args // { postInstall = (args // override).postInstall or ""; };
    spec = prim.createManagedProcess (backend.composition // common // { overrides = plainOverrides; });
    name = backend.agnosticNameOf args override;
  };

  # Force every check above (mapAttrs is lazy in its values), so a bad key
  # is an error on the function path too, where Rust never sees overrides.
  overridesChecked = builtins.foldl' (ok: o: builtins.seq o ok) true (builtins.attrValues checkedOverrides);

  result = builtins.seq overridesChecked
    (if builtins.isFunction override then viaFunction else viaAttrset);
in
backend.fromArgs {
  inherit (result) spec name;
  args = result.args // { inherit dependencies; };
}
