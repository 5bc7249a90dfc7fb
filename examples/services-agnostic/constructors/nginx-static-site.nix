# An nginx configuration serving one static page on `port`: what the nginx
# constructor runs in this example.
{ writeTextFile, stateDir, runtimeDir, cacheDir }:

{ instanceName, port, message ? "Hello from ${instanceName}!", forceDisableUserChange }:

let
  prefix = "${stateDir}/${instanceName}";
  cache = "${cacheDir}/${instanceName}";
  index = writeTextFile {
    name = "${instanceName}-site";
    destination = "/index.html";
    text = message + "\n";
  };
in
{
  pidFile = "${runtimeDir}/${instanceName}.pid";
  configFile = writeTextFile {
    name = "${instanceName}.conf";
    text = ''
      pid ${runtimeDir}/${instanceName}.pid;
      error_log ${prefix}/logs/error.log;
      ${if forceDisableUserChange then "" else "user ${instanceName} ${instanceName};"}

      events {
        worker_connections 64;
      }

      http {
        access_log ${prefix}/logs/access.log;
        client_body_temp_path ${cache}/client_body;
        proxy_temp_path ${cache}/proxy;
        fastcgi_temp_path ${cache}/fastcgi;
        uwsgi_temp_path ${cache}/uwsgi;
        scgi_temp_path ${cache}/scgi;

        server {
          listen 127.0.0.1:${toString port};
          root ${index};
          default_type text/plain;
        }
      }
    '';
  };
}
