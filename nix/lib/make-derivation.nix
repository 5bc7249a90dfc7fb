# Turns plain file data into a store path, built by the static builder.
#
#   files = [ { path; text; mode; } ]   regular files (mode: int, e.g. 365 = 0555)
#   links = [ { path; target; } ]       symbolic links
#   dirs  = [ path ]                    empty directories
#   single = { text; mode; }            make $out a single file instead
#   postInstall                         shell code run after the files exist
#                                       ($out set; needs `shell`)
#
# String context travels through builtins.toJSON, so every store path
# mentioned in a file becomes an input of the derivation.
{ system, builder, shell ? "/bin/sh" }:

{ name, files ? [ ], links ? [ ], dirs ? [ ], single ? null, postInstall ? "", passthru ? { } }:

let
  drv = derivation {
    inherit name system;
    builder = builder;
    args = [ "build" ];
    spec = builtins.toJSON {
      inherit files links dirs shell single;
      postInstall = if postInstall == "" then null else postInstall;
    };
    passAsFile = [ "spec" ];
  };
in
drv // passthru
