# The nixproc Nix library: the conventions of nix-processmgmt without
# nixpkgs. Import it with the common parameters of a constructors expression
# and get the building blocks back:
#
#   let nixproc = import <nixproc> { inherit stateDir forceDisableUserChange; };
#   in nixproc.createSystemVInitScript { instanceName = "webapp"; process = …; }
#
# Generators run in Rust: at evaluation time when the nixproc plugin is
# loaded (the `nixproc` CLI passes --option plugin-files), else at build time
# by the static builder (builder mode, lib/primops.nix).
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
  # bsdrc: the rc.subr every script sources, and daemon(8) for foreground
  # processes (a test harness replaces both on Linux).
, rcSubr ? "/etc/rc.subr"
, bsdDaemon ? "/usr/sbin/daemon"
  # Interpreter of generated scripts. Without nixpkgs it is the host's sh.
, shell ? (if pkgs != null && pkgs ? runtimeShell then pkgs.runtimeShell else "/bin/sh")
}:

let
  lib = import ./lib;

  builder = import ./lib/builder.nix;

  prim = import ./lib/primops.nix { inherit builder system; };

  mkDerivation = import ./lib/make-derivation.nix { inherit system builder shell; };

  makeProcessPackage = import ./lib/make-process-package.nix { inherit mkDerivation system; };

  makeBackend = import ./lib/backend.nix { inherit lib makeProcessPackage; };

  initFunctions = builtins.toFile "init-functions"
    (builtins.replaceStrings [ "@helper@" ] [ "${builder}" ]
      (builtins.readFile ./sysvinit/init-functions.sh));

  # A command prefix that runs a process after initialization, as another
  # user, with nice/umask/directory, or a daemon in the foreground
  # (reference §2.2, done by the static helper instead of a bash script).
  foregroundProxy = "${builder} foreground-proxy";

  pkgOr = attr: default: if pkgs != null && pkgs ? ${attr} then "${pkgs.${attr}}" else default;

  common = { inherit runtimeDir logDir tmpDir forceDisableUserChange ids shell foregroundProxy; };

  # The composition parameters of each backend, fixed once per model.
  compositions = {
    sysvinit = {
      inherit runtimeDir logDir tmpDir forceDisableUserChange ids shell initFunctions;
      startProcessAsDaemon = "${builder} daemonize";
    };
    supervisord = {
      inherit runtimeDir logDir tmpDir forceDisableUserChange ids shell foregroundProxy;
    };
    systemd = {
      inherit runtimeDir logDir tmpDir forceDisableUserChange ids shell foregroundProxy;
    };
    s6-rc = {
      inherit runtimeDir logDir tmpDir forceDisableUserChange ids shell foregroundProxy;
      # Debian keeps execline's programs in /usr/lib/execline/bin.
      execline = pkgOr "execline" "/usr/lib/execline";
      s6 = pkgOr "s6" "/usr";
    };
    bsdrc = common // { inherit rcSubr bsdDaemon; };
    launchd = common;
    cygrunsrv = common;
    # Containers share the host's store and network; one small base image
    # (built by the static builder, not with runAsRoot) serves them all.
    docker = common // {
      inherit stateDir;
      dockerBaseImage = import ./lib/docker-image.nix { inherit builder system; };
    };
    # libslack's daemon(1) of the original is the static helper's daemonize.
    disnix = common // { daemonize = "${builder} daemonize"; };
  };

  plainName = primop: args: lib.processName primop args;

  backends = {
    sysvinit = makeBackend {
      processManager = "sysvinit";
      primopName = "createSystemVInitScript";
      primop = prim.createSystemVInitScript;
      composition = compositions.sysvinit;
      # The generator needs a dependency's start sequence.
      dependencyInfo = d: { inherit (d) name; sequence = d.sequence or null; };
      nameOf = plainName "createSystemVInitScript";
      extraAttrs = spec: { sequence = spec.passthru.sequence; };
    } // { agnosticNameOf = args: _: plainName "createManagedProcess" args; };

    supervisord = makeBackend {
      processManager = "supervisord";
      primopName = "createSupervisordProgram";
      primop = prim.createSupervisordProgram;
      composition = compositions.supervisord;
      dependencyInfo = d: { inherit (d) name; priority = d.priority or null; };
      nameOf = plainName "createSupervisordProgram";
      extraAttrs = spec: { priority = spec.passthru.priority; };
    } // { agnosticNameOf = args: _: plainName "createManagedProcess" args; };

    systemd =
      let prefixed = primop: args: (args.prefix or "nix-process-") + plainName primop args;
      in makeBackend {
        processManager = "systemd";
        primopName = "createSystemdService";
        primop = prim.createSystemdService;
        composition = compositions.systemd;
        dependencyInfo = d: { inherit (d) name; };
        nameOf = prefixed "createSystemdService";
      } // { agnosticNameOf = args: _: prefixed "createManagedProcess" args; };

    s6-rc =
      let
        # A longrun with a log companion is called <name>-srv (reference §3.7).
        serviceName = primop: args:
          let
            type = args.type or "longrun";
            logged = type == "longrun" && (args.autoGenerateLogService or true);
          in
          plainName primop args + (if logged then "-srv" else "");
        foreground = args: (args.foregroundProcess or args.process or null) != null;
      in
      makeBackend {
        processManager = "s6-rc";
        primopName = "createS6RCService";
        primop = prim.createS6RCService;
        composition = compositions.s6-rc;
        dependencyInfo = d: { inherit (d) name; };
        nameOf = serviceName "createS6RCService";
      } // {
        agnosticNameOf = args: override: serviceName "createManagedProcess"
          ({ type = if foreground args then "longrun" else "oneshot"; } // args // override);
      };

    bsdrc = makeBackend {
      processManager = "bsdrc";
      primopName = "createBSDRCScript";
      primop = prim.createBSDRCScript;
      composition = compositions.bsdrc;
      dependencyInfo = d: { inherit (d) name; };
      nameOf = plainName "createBSDRCScript";
    } // { agnosticNameOf = args: _: plainName "createManagedProcess" args; };

    launchd = makeBackend {
      processManager = "launchd";
      primopName = "createLaunchdDaemon";
      primop = prim.createLaunchdDaemon;
      composition = compositions.launchd;
      dependencyInfo = d: { inherit (d) name; };
      nameOf = plainName "createLaunchdDaemon";
    } // { agnosticNameOf = args: _: plainName "createManagedProcess" args; };

    cygrunsrv =
      let prefixed = primop: args: (args.prefix or "nix-process-") + plainName primop args;
      in makeBackend {
        processManager = "cygrunsrv";
        primopName = "createCygrunsrvParams";
        primop = prim.createCygrunsrvParams;
        composition = compositions.cygrunsrv;
        dependencyInfo = d: { inherit (d) name; };
        nameOf = prefixed "createCygrunsrvParams";
      } // { agnosticNameOf = args: _: prefixed "createManagedProcess" args; };

    docker = makeBackend {
      processManager = "docker";
      primopName = "createDockerContainer";
      primop = prim.createDockerContainer;
      composition = compositions.docker;
      dependencyInfo = d: { inherit (d) name; priority = d.priority or null; };
      nameOf = plainName "createDockerContainer";
      extraAttrs = spec: { priority = spec.passthru.priority; };
    } // { agnosticNameOf = args: _: plainName "createManagedProcess" args; };

    disnix = makeBackend {
      processManager = "disnix";
      primopName = "createProcessScript";
      primop = prim.createProcessScript;
      composition = compositions.disnix;
      dependencyInfo = d: { inherit (d) name; };
      nameOf = plainName "createProcessScript";
    } // { agnosticNameOf = args: _: plainName "createManagedProcess" args; };
  };
in
{
  inherit stateDir runtimeDir logDir cacheDir libDir spoolDir lockDir tmpDir
    forceDisableUserChange processManager ids system;

  inherit lib mkDerivation builder compositions;

  # "plugin" or "builder" (see lib/primops.nix).
  generationMode = prim.mode;
  inherit prim;

  createSystemVInitScript = backends.sysvinit.create;
  createSupervisordProgram = backends.supervisord.create;
  createSystemdService = backends.systemd.create;
  createS6RCService = backends.s6-rc.create;
  createBSDRCScript = backends.bsdrc.create;
  createLaunchdDaemon = backends.launchd.create;
  createCygrunsrvParams = backends.cygrunsrv.create;
  createDockerContainer = backends.docker.create;
  createProcessScript = backends.disnix.create;

  createManagedProcess = import ./lib/create-managed-process.nix {
    inherit lib prim processManager backends;
    agnosticConfig = import ./lib/agnostic-config.nix { inherit mkDerivation; };
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
