# Small helpers shared by the Nix layer; nothing here needs nixpkgs.
rec {
  # Like lib.optionalAttrs.
  optionalAttrs = cond: attrs: if cond then attrs else { };

  # Like lib.recursiveUpdate: attrsets merge deeply, anything else is replaced.
  recursiveUpdate = lhs: rhs:
    lhs // builtins.mapAttrs
      (name: value:
        if builtins.isAttrs value && lhs ? ${name} && builtins.isAttrs lhs.${name}
        then recursiveUpdate lhs.${name} value
        else value)
      rhs;

  concatMap = f: list: builtins.concatLists (map f list);

  # Every process manager nix-processmgmt knows (keys of `overrides`).
  processManagers = [ "sysvinit" "bsdrc" "supervisord" "systemd" "launchd" "cygrunsrv" "s6-rc" "disnix" "docker" ];

  # The process name a constructor will use, computed without calling the
  # generator, so that naming a dependency never forces its whole package
  # (this is what lets the profile report dependency cycles as such).
  processName = primop: args:
    let n = args.name or null; i = args.instanceName or null; in
    if n != null then n
    else if i != null then i
    else throw "nixproc: ${primop}: no process name was specified or can be inferred (set 'name' or 'instanceName')";
}
