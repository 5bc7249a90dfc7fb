# A small package set for machines without nixpkgs: programs installed on
# the host (Debian packages) wrapped as store paths whose bin/ links to them,
# plus the example webapp built by cargo. With nixpkgs, pass
# `pkgs = import <nixpkgs> {}` instead (and provide `webapp` in it).
{ system ? builtins.currentSystem }:

let
  nixproc = import ../nix { inherit system; };
in
{
  nginx = nixproc.mkHostPackage {
    name = "nginx";
    bins.nginx = "/usr/sbin/nginx";
  };

  # Debian installs PostgreSQL's server programs under
  # /usr/lib/postgresql/<major>/bin; the newest installed major is used.
  postgresql =
    let
      base = /usr/lib/postgresql;
      majors = if builtins.pathExists base then builtins.attrNames (builtins.readDir base) else [ ];
      newest = builtins.foldl' (a: b: if a == null || builtins.compareVersions b a > 0 then b else a) null majors;
      bin = "/usr/lib/postgresql/${newest}/bin";
      programs = [ "postgres" "initdb" "pg_ctl" "pg_isready" "pg_dump" "pg_dumpall" "pg_restore" "psql" "createdb" "dropdb" ];
    in
    if newest == null then throw "host-pkgs.nix: PostgreSQL is not installed (no /usr/lib/postgresql/<major>)"
    else nixproc.mkHostPackage {
      name = "postgresql-${newest}";
      bins = builtins.listToAttrs (map (p: { name = p; value = "${bin}/${p}"; })
        (builtins.filter (p: builtins.pathExists "${bin}/${p}") programs));
    };

  python3 = nixproc.mkHostPackage {
    name = "python3";
    bins.python3 = "/usr/bin/python3";
  };

  webapp = import ./webapp { inherit (nixproc) mkDerivation; };
}
