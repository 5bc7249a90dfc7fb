//! The webapp binary, foreground and daemon mode, over real TCP.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_webapp");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn webapp() -> Command {
    let mut c = Command::new(BIN);
    c.env_remove("PORT")
        .env_remove("PID_FILE")
        .env_remove("INSTANCE_NAME")
        .env_remove("BIND_ADDRESS")
        .stdin(Stdio::null());
    c
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends `raw` and reads until the server closes the connection.
fn exchange(port: u16, raw: &[u8]) -> String {
    let mut s = connect(port);
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(port: u16) -> String {
    exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
}

fn wait_listening(port: u16) {
    wait_until("the server to listen", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: signalling a process this test started.
    unsafe { libc::kill(pid, sig) };
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
            !matches!(state, Some("Z") | Some("X"))
        })
        .unwrap_or(false)
}

fn stat_field(pid: i32, n: usize) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    s[s.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(n)
        .unwrap()
        .to_string()
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Reaper(i32);
impl Drop for Reaper {
    fn drop(&mut self) {
        kill(self.0, libc::SIGKILL);
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "webapp did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn foreground_serves_and_stops_on_sigterm() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let port = free_port();
        let child = webapp()
            .env("PORT", port.to_string())
            .env("INSTANCE_NAME", "webapp7")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        wait_listening(port);

        let resp = get(port);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("Content-Type: text/html"), "{resp}");
        assert!(resp.contains("Simple test webapp"), "{resp}");
        assert!(
            resp.contains(&format!("webapp7 listening on port: {port}")),
            "{resp}"
        );

        kill(child.0.id() as i32, sig);
        let st = wait_exit(&mut child.0);
        assert_eq!(st.code(), Some(0), "signal {sig}");
    }
}

#[test]
fn http_edge_cases() {
    let port = free_port();
    let child = webapp().env("PORT", port.to_string()).spawn().unwrap();
    let _child = KillOnDrop(child);
    wait_listening(port);

    // Default instance name.
    assert!(get(port).contains(&format!("webapp listening on port: {port}")));

    // Other methods: 405.
    let resp = exchange(
        port,
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert!(
        resp.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{resp}"
    );
    assert!(resp.contains("Allow: GET"), "{resp}");

    // Malformed requests: 400, no crash.
    for bad in [
        &b"garbage\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        b"\xff\xfe\xfd / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x", // truncated head, then EOF
    ] {
        let mut s = connect(port);
        s.write_all(bad).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let resp = String::from_utf8_lossy(&out);
        assert!(
            resp.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{bad:?}: {resp}"
        );
    }
    // An oversized head.
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let mut s = connect(port);
    let _ = s.write_all(&big);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 400"));

    // Keep-alive: two requests on one connection (pipelined), then close.
    let mut s = connect(port);
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nHEAD /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert_eq!(
        text.matches("<html>").count(),
        2,
        "HEAD has no body: {text}"
    );

    // HTTP/1.0 closes by default.
    let resp = exchange(port, b"GET / HTTP/1.0\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 200 OK"));

    // Still serving.
    assert!(get(port).contains("Simple test webapp"));
}

#[test]
fn configuration_errors() {
    let o = webapp().output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "webapp: PORT is not set\n"
    );

    let o = webapp().env("PORT", "").arg("-D").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "webapp: PORT is not set\n"
    );

    let o = webapp().env("PORT", "http").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("webapp: PORT is not a valid port"));

    let o = webapp().env("PORT", "8080").arg("-D").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).starts_with("webapp: PID_FILE is not set"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let o = webapp()
        .env("PORT", "8080")
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn bind_failure_is_reported() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let o = webapp().env("PORT", port.to_string()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!("webapp: cannot bind 127.0.0.1:{port}")),
        "{err}"
    );

    // In daemon mode the original process reports the daemon's failure, and
    // no PID file is left.
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("w.pid");
    let o = webapp()
        .env("PORT", port.to_string())
        .env("PID_FILE", &pf)
        .arg("-D")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with(&format!("webapp: cannot bind 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(!pf.exists());
}

#[test]
fn daemon_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("webapp.pid");
    let port = free_port();
    // Run from a chosen directory with a chosen umask: both must be kept.
    let o = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 027; exec "$0" -D"#)
        .arg(BIN)
        .current_dir(tmp.path())
        .env("PORT", port.to_string())
        .env("PID_FILE", &pf)
        .env("INSTANCE_NAME", "webapp3")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Ready when the original process exits: PID file written, socket bound.
    let pid = read_pid(&pf);
    let _r = Reaper(pid);
    assert!(alive(pid));
    assert!(get(port).contains(&format!("webapp3 listening on port: {port}")));

    // Detached.
    let ppid: i32 = stat_field(pid, 1).parse().unwrap();
    assert_ne!(ppid, std::process::id() as i32);
    let sid: i32 = stat_field(pid, 3).parse().unwrap();
    assert_ne!(sid, pid, "the daemon must not be a session leader");
    assert_ne!(
        sid,
        stat_field(std::process::id() as i32, 3)
            .parse::<i32>()
            .unwrap()
    );
    // cwd and umask kept (fix 40), stdio on /dev/null, nothing else inherited.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::fs::canonicalize(tmp.path()).unwrap()
    );
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("Umask:\t0027"), "{status}");
    for fd in 0..3 {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            Path::new("/dev/null")
        );
    }
    // A second instance on the same PID file refuses.
    let o = webapp()
        .env("PORT", free_port().to_string())
        .env("PID_FILE", &pf)
        .arg("-D")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already running"));
    assert_eq!(read_pid(&pf), pid);

    // SIGTERM: exits and removes its PID file (fix 38).
    kill(pid, libc::SIGTERM);
    wait_until("the daemon to exit", Duration::from_secs(10), || {
        !alive(pid)
    });
    wait_until("the PID file to go", Duration::from_secs(5), || {
        !pf.exists()
    });
}

#[test]
fn stale_pid_file_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let pf = tmp.path().join("webapp.pid");
    for stale in ["999999999\n", "not a pid\n", ""] {
        std::fs::write(&pf, stale).unwrap();
        let port = free_port();
        let o = webapp()
            .env("PORT", port.to_string())
            .env("PID_FILE", &pf)
            .arg("-D")
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{stale:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let pid = read_pid(&pf);
        let _r = Reaper(pid);
        assert!(get(port).contains("Simple test webapp"));
        kill(pid, libc::SIGINT);
        wait_until("the daemon to exit", Duration::from_secs(10), || {
            !alive(pid)
        });
        wait_until("the PID file to go", Duration::from_secs(5), || {
            !pf.exists()
        });
    }
}
