# ID resources for `nixproc id-assign`: the pools unique ports, uids and
# gids are taken from. Instances ask for them with `requiresUniqueIdsFor`.
{
  postgresqlPorts = { min = 5432; max = 5532; };
  nginxPorts = { min = 8080; max = 8180; };
  uids = { min = 2000; max = 3000; };
  gids = { min = 2000; max = 3000; };
}
