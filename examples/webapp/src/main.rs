//! `webapp`: the simple test web application of the nixproc examples.
//!
//! ```text
//! PORT=5000 [INSTANCE_NAME=webapp] [BIND_ADDRESS=127.0.0.1] webapp        # foreground
//! PORT=5000 PID_FILE=/run/webapp.pid webapp -D                             # daemon
//! ```
//!
//! Every GET (and HEAD) is answered with a small HTML page
//! "Simple test webapp … <INSTANCE_NAME> listening on port: <PORT>"; other
//! methods get 405, malformed requests 400. SIGTERM or SIGINT stop it
//! (exit 0).
//!
//! Daemon mode follows systemd's daemon(7) recipe: fork, setsid, fork; the
//! original process exits 0 only once the socket is bound and the PID file
//! written, 1 with the daemon's error message otherwise. Unlike the original
//! C program it replaces a stale PID file, removes its PID file on exit,
//! closes inherited descriptors, and keeps the working directory and umask
//! the process manager gave it.

mod daemon;
mod http;
mod signals;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

const USAGE: &str = "usage: webapp [-D]\n\
    \n\
    Environment:\n\
    \x20 PORT           TCP port to listen on (required)\n\
    \x20 INSTANCE_NAME  name shown on the page (default: webapp)\n\
    \x20 BIND_ADDRESS   address to bind (default: 127.0.0.1)\n\
    \x20 PID_FILE       PID file written in daemon mode (required with -D)\n\
    \n\
    -D  run as a daemon (fork, setsid, fork; exits once the server is ready)\n";

/// A fatal start-up error: printed as `webapp: <msg>`, exit 1.
pub struct Fatal(pub String);

pub struct Config {
    pub daemon: bool,
    pub site: http::Site,
    pub addr: SocketAddr,
    pub pid_file: Option<PathBuf>,
}

fn config() -> Result<Config, Fatal> {
    let mut daemon = false;
    for arg in std::env::args_os().skip(1) {
        match arg.to_str() {
            Some("-D") => daemon = true,
            Some("-h") | Some("--help") => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            _ => {
                return Err(Fatal(format!(
                    "unknown argument {:?}\n{USAGE}",
                    arg.to_string_lossy()
                )))
            }
        }
    }
    let port = match std::env::var("PORT") {
        Ok(p) if !p.is_empty() => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| Fatal(format!("PORT is not a valid port number: {p:?}")))?,
        Ok(_) | Err(std::env::VarError::NotPresent) => return Err(Fatal("PORT is not set".into())),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Fatal("PORT is not a valid port number".into()))
        }
    };
    let instance_name = std::env::var("INSTANCE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "webapp".into());
    let bind = std::env::var("BIND_ADDRESS")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    let ip: IpAddr = bind
        .parse()
        .map_err(|_| Fatal(format!("BIND_ADDRESS is not an IP address: {bind:?}")))?;
    let pid_file = std::env::var_os("PID_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    if daemon && pid_file.is_none() {
        return Err(Fatal("PID_FILE is not set (required with -D)".into()));
    }
    Ok(Config {
        daemon,
        site: http::Site {
            instance_name,
            port,
        },
        addr: SocketAddr::new(ip, port),
        pid_file,
    })
}

pub fn bind(addr: SocketAddr) -> Result<TcpListener, Fatal> {
    let listener =
        TcpListener::bind(addr).map_err(|e| Fatal(format!("cannot bind {addr}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Fatal(format!("cannot configure the socket: {e}")))?;
    Ok(listener)
}

/// Accepts connections until SIGTERM/SIGINT, one thread per connection.
pub fn serve(listener: TcpListener, site: http::Site) {
    let site = std::sync::Arc::new(site);
    while !signals::stop_requested() {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; a signal interrupts the wait (EINTR).
        let ready = unsafe { libc::poll(&mut pfd, 1, 200) };
        if ready <= 0 {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let site = site.clone();
                    let spawned = std::thread::Builder::new()
                        .name("connection".into())
                        .spawn(move || http::serve_connection(&site, stream));
                    if let Err(e) = spawned {
                        eprintln!("webapp: cannot start a connection thread: {e}");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                Err(e) => {
                    // E.g. EMFILE: back off instead of spinning.
                    eprintln!("webapp: accept failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    break;
                }
            }
        }
    }
}

fn run() -> Result<(), Fatal> {
    let cfg = config()?;
    if cfg.daemon {
        daemon::run(cfg)
    } else {
        signals::install().map_err(|e| Fatal(format!("cannot install signal handlers: {e}")))?;
        let listener = bind(cfg.addr)?;
        serve(listener, cfg.site);
        Ok(())
    }
}

fn main() {
    if let Err(Fatal(msg)) = run() {
        eprintln!("webapp: {msg}");
        std::process::exit(1);
    }
}
