{
  ids = {
    gids = {
      nginx = 2000;
      postgresql1 = 2001;
      postgresql2 = 2002;
    };
    nginxPorts = {
      nginx = 8080;
    };
    postgresqlPorts = {
      postgresql1 = 5432;
      postgresql2 = 5433;
    };
    uids = {
      nginx = 2000;
      postgresql1 = 2001;
      postgresql2 = 2002;
    };
  };
  lastAssignments = {
    gids = 2002;
    nginxPorts = 8080;
    postgresqlPorts = 5433;
    uids = 2002;
  };
}
