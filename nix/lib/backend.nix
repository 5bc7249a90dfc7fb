# Turns a backend primop into the create function process expressions call
# (createSystemVInitScript, createSupervisordProgram, …): merges the
# composition, replaces dependency packages by what the generator needs to
# know of them, and wraps the result into a process package.
{ lib, makeProcessPackage }:

{ processManager
, primop        # function: the primop (plugin or builder mode)
, primopName
, composition   # the backend's composition parameters
, dependencyInfo # dependency package -> what the generator needs of it
, nameOf        # args -> process name, computed without the generator
, extraAttrs ? (spec: { })
}:

rec {
  inherit processManager composition primopName nameOf;

  # Checks that a dependency is a package of the same backend.
  dependencyInfoChecked = caller: d:
    if !(builtins.isAttrs d && d ? nixproc) then
      throw "nixproc: ${caller}: every element of 'dependencies' must be a process package (the pkg of another instance), but one is a ${builtins.typeOf d}"
    else if d.nixproc.processManager != processManager then
      throw "nixproc: ${caller}: dependency '${d.name}' is a ${d.nixproc.processManager} process, but this is a ${processManager} process"
    else dependencyInfo d;

  # Makes the package from the generator's (final) arguments.
  fromArgs = { args, name, spec }:
    makeProcessPackage {
      inherit name spec processManager;
      dependencyNames = map (d: d.name) (args.dependencies or [ ]);
      postInstall = args.postInstall or "";
      extraAttrs = extraAttrs spec;
    };

  create = args:
    let
      dependencies = args.dependencies or [ ];
      spec = primop (composition // args // {
        dependencies = map (dependencyInfoChecked primopName) dependencies;
      });
    in
    fromArgs { inherit args spec; name = nameOf (composition // args); };
}
