# What `nixproc id-assign` needs from a processes model (reference §5.9),
# evaluated with `nix-instantiate --eval --strict --json`:
#
#   { requirements = { <instance key> = [ <resource> … ]; };
#     resources    = <idresources.nix>;
#     previous     = { ids; lastAssignments; };   # of the previous ids.nix, or empty }
#
# Only each instance's `serviceProperty` (default requiresUniqueIdsFor) is
# read: its `pkg` is never forced, so a model whose ids are not assigned yet
# (ports read as `ids.<res>.<inst> or 0`) evaluates, and nothing is built.
#
# The model gets its arguments as from `nixproc build` (build-profile.nix):
# only the ones passed explicitly (state dirs as --argstr, defect 7 of the
# original), plus processManager and extraParams, restricted to its formals.
args@{ exprFile
, idResourcesFile
, idsFile ? null
, serviceProperty ? "requiresUniqueIdsFor"
, processManager ? "sysvinit"
, extraParams ? { }
, ...
}:

let
  own = [ "exprFile" "idResourcesFile" "idsFile" "serviceProperty" "extraParams" ];

  fun = import exprFile;
  passed = removeAttrs args own // { inherit processManager; } // extraParams;
  model =
    if builtins.isFunction fun then fun (builtins.intersectAttrs (builtins.functionArgs fun) passed)
    else fun;

  checkedModel =
    if builtins.isAttrs model then model
    else throw "nixproc id-assign: the processes model ${exprFile} must evaluate to an attribute set of instances, but it is a ${builtins.typeOf model}";

  requirementsOf = key: instance:
    let value = instance.${serviceProperty} or [ ]; in
    if !(builtins.isAttrs instance) then
      throw "nixproc id-assign: instance '${key}' of the processes model must be an attribute set, but it is a ${builtins.typeOf instance}"
    else if !(builtins.isList value) then
      throw "nixproc id-assign: instance '${key}': '${serviceProperty}' must be a list of id resource names, but it is a ${builtins.typeOf value}"
    else if !(builtins.all builtins.isString value) then
      throw "nixproc id-assign: instance '${key}': '${serviceProperty}' must be a list of id resource names (strings), but an element is not a string"
    else value;

  resources = import idResourcesFile;
  checkedResources =
    if builtins.isAttrs resources then resources
    else throw "nixproc id-assign: the id resources ${idResourcesFile} must be an attribute set { <resource> = { min; max; }; }, but it is a ${builtins.typeOf resources}";

  previous = if idsFile == null then { } else import idsFile;
  checkedPrevious =
    if !(builtins.isAttrs previous) then
      throw "nixproc id-assign: the previous ids ${idsFile} must be an attribute set { ids; lastAssignments; }, but it is a ${builtins.typeOf previous}"
    else {
      ids = previous.ids or { };
      lastAssignments = previous.lastAssignments or { };
    };
in
{
  requirements = builtins.mapAttrs requirementsOf checkedModel;
  resources = checkedResources;
  previous = checkedPrevious;
}
