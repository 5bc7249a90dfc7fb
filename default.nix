# Packaging for Nix users (needs nixpkgs; not used by nixproc's own machinery,
# which works without nixpkgs). Builds the CLI, the plugin against the Nix of
# this package set, the static builder, and installs the Nix library:
#
#   nix-build -A nixproc            # $out/bin/nixproc, $out/lib/…, $out/share/nixproc/nix
#   nix-build -A nixproc --arg nix 'pkgs.nixVersions.nix_2_24'
#
# The plugin only loads into the exact Nix it was built against; nixproc
# passes it to that Nix with --option plugin-files.
{ pkgs ? import <nixpkgs> { }
, nix ? pkgs.nix
}:

let
  inherit (pkgs) lib;
  src = lib.cleanSourceWith {
    src = ./.;
    filter = path: type:
      let base = baseNameOf path; in
      !(lib.hasPrefix "target" base) && base != "result" && base != ".state";
  };

  # The builder runs inside Nix's sandbox, where only a static binary works.
  builder = pkgs.pkgsStatic.rustPlatform.buildRustPackage {
    pname = "nixproc-builder";
    version = "0.1.0";
    inherit src;
    cargoLock.lockFile = ./Cargo.lock;
    cargoBuildFlags = [ "-p" "nixproc-builder" ];
    doCheck = false;
  };

  nixproc = pkgs.rustPlatform.buildRustPackage {
    pname = "nixproc";
    version = "0.1.0";
    inherit src;
    cargoLock.lockFile = ./Cargo.lock;
    nativeBuildInputs = [ pkgs.pkg-config ];
    buildInputs = [ nix nix.dev pkgs.boost pkgs.boehmgc pkgs.nlohmann_json ];
    NIX_INCLUDE_DIR = "${nix.dev}/include";
    NIX_VERSION = nix.version;
    cargoBuildFlags = [ "-p" "nixproc" "-p" "nixproc-plugin" ];
    # The integration tests need a writable store and real process managers.
    doCheck = false;
    postInstall = ''
      mkdir -p $out/lib/nixproc $out/share/nixproc
      cp target/*/release/libnixproc_plugin.so $out/lib/nixproc/ 2>/dev/null \
        || cp target/release/libnixproc_plugin.so $out/lib/nixproc/
      ln -s ${builder}/bin/nixproc-builder $out/bin/nixproc-builder
      cp -r nix $out/share/nixproc/nix
      for name in nixproc-build nixproc-init-state nixproc-sysvinit-switch nixproc-sysvinit-deploy; do
        ln -s nixproc $out/bin/$name
      done
    '';
    meta = {
      description = "Process management with Nix, for any process manager, as any user";
      license = lib.licenses.mit;
      mainProgram = "nixproc";
    };
  };
in
{
  inherit nixproc builder;
}
