# The nixproc Nix library: the conventions of nix-processmgmt without
# nixpkgs. Import it with the common parameters of a constructors expression
# and get the building blocks back:
#
#   let nixproc = import <nixproc> { inherit stateDir forceDisableUserChange; };
#   in nixproc.createSystemVInitScript { instanceName = "webapp"; process = …; }
#
# Generators run in Rust at evaluation time (the nixproc plugin, loaded by the
# `nixproc` CLI with --option plugin-files).
{ pkgs ? null
, system ? builtins.currentSystem
, stateDir ? "/var"
, runtimeDir ? "${stateDir}/run"
, logDir ? "${stateDir}/log"
, cacheDir ? "${stateDir}/cache"
, libDir ? "${stateDir}/lib"
, spoolDir ? "${stateDir}/spool"
, lockDir ? "${stateDir}/lock"
, tmpDir ? (if stateDir == "/var" then "/tmp" else "${stateDir}/tmp")
, forceDisableUserChange ? false
, processManager ? "sysvinit"
, ids ? { }
, callingUser ? null
, callingGroup ? null
  # Interpreter of generated scripts. Without nixpkgs it is the host's sh.
, shell ? (if pkgs != null && pkgs ? runtimeShell then pkgs.runtimeShell else "/bin/sh")
}:

let
  lib = import ./lib;

  requirePlugin = primop:
    if builtins ? ${primop} then true
    else throw ''
      nixproc: builtins.${primop} is missing: the nixproc plugin is not loaded.
      Run through the `nixproc` CLI, or pass
      --option plugin-files /path/to/libnixproc_plugin.so to nix-build.'';

  builder = import ./lib/builder.nix;

  mkDerivation = import ./lib/make-derivation.nix { inherit system builder shell; };

  makeProcessPackage = import ./lib/make-process-package.nix { inherit mkDerivation system; };

  initFunctions = builtins.toFile "init-functions"
    (builtins.replaceStrings [ "@helper@" ] [ "${builder}" ]
      (builtins.readFile ./sysvinit/init-functions.sh));

  sysvinitComposition = {
    inherit runtimeDir logDir tmpDir forceDisableUserChange ids shell initFunctions;
    startProcessAsDaemon = "${builder} daemonize";
  };
in
{
  inherit stateDir runtimeDir logDir cacheDir libDir spoolDir lockDir tmpDir
    forceDisableUserChange processManager ids system;

  inherit lib mkDerivation builder;

  createSystemVInitScript =
    assert requirePlugin "createSystemVInitScript";
    import ./sysvinit/create-systemv-init-script.nix {
      inherit lib makeProcessPackage;
      composition = sysvinitComposition;
    };

  # writeTextFile-style helpers, so process expressions need no nixpkgs.
  # Without `destination` the output is the file itself, as in nixpkgs.
  writeTextFile = { name, text, executable ? false, destination ? "" }:
    let mode = if executable then 365 else 292; in
    mkDerivation ({ inherit name; }
      // (if destination == "" then { single = { inherit text mode; }; }
      else { files = [{ path = builtins.substring 1 (-1) destination; inherit text mode; }]; }));

  writeText = name: text: mkDerivation { inherit name; single = { inherit text; mode = 292; }; };

  writeScript = name: text: mkDerivation { inherit name; single = { inherit text; mode = 365; }; };

  # An executable script at $out/bin/<name>.
  writeScriptBin = name: text: mkDerivation {
    inherit name;
    files = [{ path = "bin/${name}"; inherit text; mode = 365; }];
  };

  # A package whose bin/ links to programs installed on the host, for
  # machines without nixpkgs: mkHostPackage { name = "nginx"; bins = { nginx = "/usr/sbin/nginx"; }; }
  mkHostPackage = { name, bins ? { }, paths ? { } }: mkDerivation {
    inherit name;
    links = map (b: { path = "bin/${b}"; target = bins.${b}; }) (builtins.attrNames bins)
      ++ map (p: { path = p; target = paths.${p}; }) (builtins.attrNames paths);
  };
}
