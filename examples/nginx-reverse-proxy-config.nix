# The nginx reverse proxy configuration both webapps examples share: one
# virtual host per webapp (server_name = the webapp's dnsName) and a
# catch-all server answering unknown hosts with an error page. Returns the
# paths the process expression needs.
{ writeTextFile, stateDir, runtimeDir, cacheDir, forceDisableUserChange }:

{ port, webapps, instanceName, workerConnections }:

let
  prefix = "${stateDir}/${instanceName}";
  cache = "${cacheDir}/${instanceName}";
  pidFile = "${runtimeDir}/${instanceName}.pid";

  upstream = w: ''
    upstream webapp${toString w.port} {
      server 127.0.0.1:${toString w.port};
    }
  '';
  virtualHost = w: ''
    server {
      listen ${toString port};
      server_name ${w.dnsName};
      location / {
        proxy_pass http://webapp${toString w.port};
      }
    }
  '';

  configFile = writeTextFile {
    name = "${instanceName}.conf";
    text = ''
      pid ${pidFile};
      error_log ${prefix}/logs/error.log;
      ${if forceDisableUserChange then "" else "user ${instanceName} ${instanceName};"}

      events {
        worker_connections ${toString workerConnections};
      }

      http {
        access_log ${prefix}/logs/access.log;
        client_body_temp_path ${cache}/client_body;
        proxy_temp_path ${cache}/proxy;
        fastcgi_temp_path ${cache}/fastcgi;
        uwsgi_temp_path ${cache}/uwsgi;
        scgi_temp_path ${cache}/scgi;

        ${builtins.concatStringsSep "\n" (map upstream webapps)}

        server {
          listen ${toString port} default_server;
          server_name aaaa;
          location / {
            default_type text/plain;
            return 404 "This web application is unavailable at the moment!\n";
          }
        }

        ${builtins.concatStringsSep "\n" (map virtualHost webapps)}
      }
    '';
  };
in
{
  inherit configFile prefix cache pidFile;
  # Creates the directories nginx writes to (as root: owned by the instance user).
  initialize = ''
    mkdir -p ${prefix}/logs ${cache}
  '' + (if forceDisableUserChange then "" else ''
    chown ${instanceName}:${instanceName} ${prefix}/logs ${cache}
  '');
  credentials = {
    groups.${instanceName} = { };
    users.${instanceName} = {
      group = instanceName;
      description = "Nginx ${instanceName}";
    };
  };
}
