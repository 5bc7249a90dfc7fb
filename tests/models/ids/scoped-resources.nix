# A Disnix-only scope, which processes models cannot use.
{
  webappPorts = { min = 5000; max = 6000; scope = "target"; };
  proxyPorts = { min = 8080; max = 8090; };
}
