# ID resources of the id-assign test model (nix-processmgmt's example pools).
rec {
  webappPorts = { min = 5000; max = 6000; };
  proxyPorts = { min = 8080; max = 9000; scope = "global"; step = 10; };
  uids = { min = 2000; max = 3000; };
  gids = uids;
}
