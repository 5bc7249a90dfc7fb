# Too small a pool: exhausted by the two default webapps.
{
  webappPorts = { min = 5000; max = 5000; };
  proxyPorts = { min = 8080; max = 8090; };
}
