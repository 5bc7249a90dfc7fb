# `nixproc generate-config` (reference §4.4, §5.10).
#
# * Reader: turns an agnostic config (`<name>.json`, written by
#   lib/agnostic-config.nix) into a process package for `processManager`.
#   Dependencies are store paths of other config packages; each is read from
#   `<path>/<name>.json` (name = the path's basename without the hash) and
#   converted the same way, recursively. Each string of a config gets back
#   the context of the store paths it mentions (from the references of the
#   JSON file), so executables it names stay inputs of what is built from it.
# * `base = true`: the process manager's own base configuration for the
#   state directories: supervisord's supervisord.conf (the one profiles
#   carry, with an empty conf.d/), or an s6-svscan scan directory with
#   `.s6-svscan/finish` and `bin/nixproc-s6-svscan` to install and run it.
#
# State directories arrive as strings (--argstr) and, as in build-profile.nix,
# only those given explicitly are passed on; nixproc's defaults apply to the rest.
args@{ processManager
, configFile ? null
, createManagedProcessExpr ? null
, base ? false
, ...
}:

let
  params = removeAttrs args [ "configFile" "createManagedProcessExpr" "base" ];

  nixproc = import ./. (builtins.intersectAttrs (builtins.functionArgs (import ./.)) params);

  tool = "nixproc generate-config";

  createManagedProcess =
    if createManagedProcessExpr == null then nixproc.createManagedProcess
    else
      let
        f = import createManagedProcessExpr;
        available = params // { inherit nixproc; inherit (nixproc) stateDir runtimeDir logDir tmpDir cacheDir libDir spoolDir lockDir forceDisableUserChange; };
        r = if builtins.isFunction f then f (builtins.intersectAttrs (builtins.functionArgs f) available) else f;
      in
      if builtins.isFunction r then r
      else if builtins.isAttrs r && r ? createManagedProcess then r.createManagedProcess
      else throw "${tool}: ${createManagedProcessExpr} must give createManagedProcess: a function of the state parameters returning it, or a set with a createManagedProcess attribute, but it gives a ${builtins.typeOf r}";

  readConfig = file:
    let
      raw = builtins.readFile file;
      # Each string gets back the context of the store paths (references of
      # the file) it mentions — a name or a dependency path gets none.
      references = builtins.getContext raw;
      mentions = s: p: builtins.stringLength (builtins.replaceStrings [ p ] [ "" ] s) != builtins.stringLength s;
      withContext = v:
        if builtins.isString v then
          builtins.appendContext v
            (builtins.removeAttrs references (builtins.filter (p: !(mentions v p)) (builtins.attrNames references)))
        else if builtins.isList v then map withContext v
        else if builtins.isAttrs v then builtins.mapAttrs (_: withContext) v
        else v;
      config = builtins.fromJSON (builtins.unsafeDiscardStringContext raw);
    in
    if !(builtins.isAttrs config) then
      throw "${tool}: ${file} must hold a JSON object (the arguments of createManagedProcess), but it holds a ${builtins.typeOf config}"
    else withContext config;

  fromDependency = file: path:
    let
      base = baseNameOf path;
      # /nix/store/<32-character hash>-<name>
      name = builtins.substring 33 (-1) base;
    in
    if !(builtins.isString path) || builtins.stringLength base < 34 then
      throw "${tool}: ${file}: every element of 'dependencies' must be the store path of another agnostic config package"
    else fromConfig "${builtins.unsafeDiscardStringContext path}/${name}.json";

  fromConfig = file:
    let
      config = readConfig file;
      dependencies = config.dependencies or [ ];
    in
    if !(builtins.isList dependencies) then
      throw "${tool}: ${file}: 'dependencies' must be a list of store paths, but it is a ${builtins.typeOf dependencies}"
    else
      createManagedProcess (removeAttrs config [ "dependencies" ]
        // nixproc.lib.optionalAttrs (config ? dependencies) {
        dependencies = map (fromDependency file) dependencies;
      });

  quote = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  supervisordBase = nixproc.mkDerivation {
    name = "supervisord-base";
    files = (nixproc.prim.nixprocProfileExtras {
      processManager = "supervisord";
      composition = nixproc.compositions.supervisord;
      services = [ ];
    }).files;
    dirs = [ "conf.d" ];
  };

  s6 = nixproc.compositions.s6-rc;

  # Run by s6-svscan as it exits (s6-svscanctl -t); without it s6-svscan
  # warns that it cannot exec its finish script.
  s6Finish = nixproc.writeScript "s6-svscan-finish" ''
    #!${s6.shell}
    # s6-svscan is exiting: nothing to clean up for nixproc's scan directory.
    exit 0
  '';

  scanDir = "${nixproc.runtimeDir}/service";

  s6Base = nixproc.mkDerivation {
    name = "s6-svscan-base";
    links = [{ path = "service/.s6-svscan/finish"; target = "${s6Finish}"; }];
    files = [{
      path = "bin/nixproc-s6-svscan";
      mode = 365;
      text = ''
        #!${s6.shell}
        # Installs nixproc's s6 scan directory at ${scanDir} and runs
        # s6-svscan on it in the foreground (nix-processmgmt's nixproc-s6-svscan).
        set -e
        scandir=${quote scanDir}
        mkdir -p "$scandir/.s6-svscan"
        ln -sfn ${quote "${s6Finish}"} "$scandir/.s6-svscan/finish"
        exec ${quote "${s6.s6}/bin/s6-svscan"} "$scandir"
      '';
    }];
  };

  result =
    if base then
      (if processManager == "supervisord" then supervisordBase
      else if processManager == "s6-rc" then s6Base
      else throw "${tool}: ${processManager} has no base configuration of its own (only supervisord and s6-rc have one)")
    else if configFile == null then
      throw "${tool}: no config file given (configFile)"
    else fromConfig configFile;
in
result
