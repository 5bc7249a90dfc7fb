# The agnostic config writer (reference §4.4): what createManagedProcess
# returns when a model is evaluated with `processManager = null`. A package
# named after the process holding `<name>.json` = exactly the arguments the
# caller passed (defaults are not written). Executables and other store
# paths stay strings (their store paths become references of the package);
# `dependencies` (the pkgs of other instances, themselves config packages)
# are written as their store paths, so `nixproc generate-config` can read
# them back recursively.
#
#   agnosticConfig = import <nixproc/lib/agnostic-config.nix> { inherit (nixproc) mkDerivation; };
#   agnosticConfig { instanceName = "webapp"; process = "${webapp}/bin/webapp"; }
#   # → /nix/store/…-webapp/webapp.json
#
# A user produces the JSON files by building the model's packages with
# processManager = null, e.g.
#   nix-build processes.nix --arg processManager null -A webapp.pkg
# and turns one into a package for a process manager with
#   nixproc generate-config -P supervisord --state-dir … /nix/store/…-webapp/webapp.json
{ mkDerivation }:

args:

let
  caller = "createManagedProcess (agnostic config)";

  name =
    let n = args.name or null; i = args.instanceName or null; in
    if n != null then n
    else if i != null then i
    else throw "nixproc: ${caller}: no process name was specified or can be inferred (set 'name' or 'instanceName')";

  overrides = args.overrides or { };
  functionOverrides =
    if builtins.isAttrs overrides
    then builtins.filter (pm: builtins.isFunction overrides.${pm}) (builtins.attrNames overrides)
    else [ ];

  dependencies = args.dependencies or [ ];
  notConfigs = builtins.filter (d: !(builtins.isAttrs d && d ? nixprocAgnosticConfig)) dependencies;

  checked =
    if !(builtins.isAttrs overrides) then
      throw "nixproc: ${caller}: 'overrides' must be a set { <processManager> = set; }, but it is a ${builtins.typeOf overrides}"
    else if functionOverrides != [ ] then
      throw "nixproc: ${caller}: overrides.${builtins.head functionOverrides} is a function, which cannot be written to a JSON config; use an attribute set (it is merged into the generated arguments)"
    else if !(builtins.isList dependencies) then
      throw "nixproc: ${caller}: 'dependencies' must be a list of process packages, but it is a ${builtins.typeOf dependencies}"
    else if notConfigs != [ ] then
      throw "nixproc: ${caller}: every element of 'dependencies' must be the pkg of another instance made with processManager = null (an agnostic config package)"
    else args;
in
mkDerivation {
  inherit name;
  files = [{
    path = "${name}.json";
    text = builtins.toJSON checked;
    mode = 292;
  }];
  passthru = {
    # The arguments, for tools that want them without reading the file.
    nixprocAgnosticConfig = checked;
  };
}
