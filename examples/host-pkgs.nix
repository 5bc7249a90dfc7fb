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

  webapp = import ./webapp { inherit (nixproc) mkDerivation; };
}
