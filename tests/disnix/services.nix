# A Disnix services expression (what `disnix-env -s` takes) made from the
# processes model next to it by nixproc's services adapter.
{ system ? builtins.currentSystem
, distribution ? null
, invDistribution ? null
, pkgs ? null
, stateDir ? "/var"
, processManager ? "disnix"
}:

import ../../nix/disnix/services-adapter.nix {
  exprFile = ./processes.nix;
  inherit stateDir processManager;
  forceDisableUserChange = true;
}
