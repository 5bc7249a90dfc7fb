{
  description = "nixproc: process management with Nix, for any process manager, as any user";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs:
        let p = import ./default.nix { inherit pkgs; }; in
        { default = p.nixproc; inherit (p) nixproc builder; });

      # The Nix library, for `import nixproc.lib { stateDir = …; }` style use
      # (needs the plugin loaded, or builder mode once it exists).
      lib = ./nix;
    };
}
