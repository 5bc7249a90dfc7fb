# SKELETON (issue 4): the base image every nixproc container is created
# from. Being written; building it is an error until then.
{ mkDerivation, builder, forceDisableUserChange }:

throw "nixproc: the docker base image is not implemented yet"
