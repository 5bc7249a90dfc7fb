# The base image every nixproc container is created from (see
# rust/nixproc-core/src/docker/mod.rs): a `docker load`-able archive with one
# layer holding /run, /tmp (1777), /var, /var/run -> /run, /etc/passwd and
# /etc/group (root, nobody/nogroup). Containers share the host's store and
# network, so nothing per process goes into an image; command, environment,
# working directory and user are `docker create` arguments.
#
# Built by the static builder (`nixproc-builder docker-base-image`): no
# nixpkgs, no dockerTools, no runAsRoot VM (defect 27). The archive is
# reproducible (sorted entries, owner 0:0, mtime 0), so its store path (and
# with it the default tag nixproc-base:<hash>) changes only when its
# contents do.
#
# `forceDisableUserChange` does not change the image: under it, containers
# run as the deploying user (`docker create --user <uid>:<gid>`, set by the
# activator), which needs no account in the image.
{ builder, system ? builtins.currentSystem }:

derivation {
  name = "nixproc-docker-base.tar";
  inherit system builder;
  args = [ "docker-base-image" "--system" system ];
}
