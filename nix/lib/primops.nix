# The nixproc primops, whichever way they are available:
#
# * plugin mode: `builtins.<name>` registered by libnixproc_plugin.so (the
#   generators run inside the evaluator);
# * builder mode: where no plugin can load (a statically linked Nix, another
#   Nix version, Lix), the same argument is handed as JSON to the static
#   `nixproc-builder primop <name>`, run as a derivation, and its JSON answer
#   is read back (import from derivation). Same Rust code, same result — a
#   test compares profiles built both ways.
#
# In builder mode every string of a result carries the store paths the
# result refers to as context (readFile gives the references of the output),
# a superset of the plugin's per-string context: nothing a file mentions can
# be missing from the build.
{ builder, system }:

let
  names = [
    "createSystemVInitScript"
    "createSupervisordProgram"
    "createSystemdService"
    "createS6RCService"
    "createBSDRCScript"
    "createLaunchdDaemon"
    "createCygrunsrvParams"
    "createDockerContainer"
    "createProcessScript"
    "createManagedProcess"
    "nixprocTranslateManagedProcess"
    "nixprocProfileExtras"
    "nixprocCheckModel"
  ];

  viaBuilder = name: arg:
    let
      out = derivation {
        name = "nixproc-primop-${name}";
        inherit system builder;
        args = [ "primop" name ];
        input = builtins.toJSON arg;
        passAsFile = [ "input" ];
      };
      raw = builtins.readFile out;
      # An empty string carrying the result's references as context.
      context = builtins.substring 0 0 raw;
      withContext = v:
        if builtins.isString v then context + v
        else if builtins.isList v then map withContext v
        else if builtins.isAttrs v then builtins.mapAttrs (_: withContext) v
        else v;
    in
    withContext (builtins.fromJSON (builtins.unsafeDiscardStringContext raw));

  pluginLoaded = builtins.all (n: builtins ? ${n}) names;
in
{
  # "plugin" or "builder": which mode this evaluation uses.
  mode = if pluginLoaded then "plugin" else "builder";
}
// builtins.listToAttrs (map
  (n: {
    name = n;
    value = if pluginLoaded then builtins.${n} else viaBuilder n;
  })
  names)
