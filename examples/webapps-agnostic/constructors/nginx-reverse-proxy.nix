# Process expression (any process manager): nginx as a reverse proxy with one virtual host per
# webapp (server_name = the webapp's dnsName), and a catch-all server that
# answers unknown hosts with an error page.
{ createManagedProcess, writeTextFile, nginx, stateDir, runtimeDir, cacheDir, forceDisableUserChange }:

{ port ? 80
, webapps ? [ ]
, instanceSuffix ? ""
, instanceName ? "nginx${instanceSuffix}"
, workerConnections ? 1024
}:

# Inter-dependencies (Disnix); {} in a processes model.
interDependencies:

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
createManagedProcess {
  inherit instanceName pidFile;
  description = "Nginx reverse proxy ${instanceName}";
  # nginx daemonizes by default; in the foreground it needs "daemon off;".
  process = "${nginx}/bin/nginx";
  args = [ "-c" configFile "-p" prefix "-e" "${prefix}/logs/error.log" ];
  foregroundProcessExtraArgs = [ "-g" "daemon off;" ];
  initialize = ''
    mkdir -p ${prefix}/logs ${cache}
  '' + (if forceDisableUserChange then "" else ''
    chown ${instanceName}:${instanceName} ${prefix}/logs ${cache}
  '');
  dependencies = map (w: w.pkg) webapps;

  credentials = {
    groups.${instanceName} = { };
    users.${instanceName} = {
      group = instanceName;
      description = "Nginx ${instanceName}";
    };
  };

  overrides = {
    sysvinit.runlevels = [ 3 4 5 ];
  };
}
