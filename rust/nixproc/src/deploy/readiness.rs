//! Readiness checks (issue 6): after an instance's start returns, a switch
//! waits until every check of its `readiness` declaration passes before
//! starting its dependents; a check that does not pass within the timeout
//! fails the start (and the switch rolls back).
//!
//! * `tcp`: a TCP connection to `host:port` succeeds.
//! * `http`: a plain HTTP/1.0 `GET` answers with the expected status (any
//!   2xx/3xx when none is declared); std `TcpStream`, no TLS.
//! * `command`: `sh -c <command>` exits 0; as the instance's user when
//!   nixproc runs as root and the manifest names a user (the manifest's
//!   `user` is already empty under `forceDisableUserChange`).
//! * `pid-file`: the file (default: the instance's `pid_file`) names a live
//!   process (`kill(pid, 0)`; EPERM counts as alive).
//! * `log-line`: a line containing the text appears in the file (default:
//!   the instance's `log_file`) *after* the start began: the engine records
//!   the file sizes before the start ([`ProbeContext::before_start`]).
//!
//! [`probe`] makes one attempt of every check (for `nixproc status`);
//! [`wait_ready`] polls every `interval` ms until all pass or `timeout` s
//! have elapsed.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nixproc_core::lifecycle::{Readiness, ReadinessCheck};
use nixproc_core::manifest::InstanceEntry;
use serde::Serialize;

use super::progress::{Event, Progress};
use super::runner::{Cmd, Runner, SystemRunner};

/// How long one network attempt may take at most.
const NET_TIMEOUT: Duration = Duration::from_secs(2);
/// How much of a log file a `log-line` check reads at most per attempt.
const LOG_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// The outcome of one attempt of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// What is checked, in words: `tcp 127.0.0.1:5000`.
    pub check: String,
    pub ok: bool,
    /// Why it failed (`connection refused`), or what it saw when it passed
    /// (`HTTP 200`); may be empty.
    pub detail: String,
}

/// What the checks need besides the instance.
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    /// Run `command` checks as the instance's user (nixproc is root and
    /// the instance declares one).
    pub switch_user: bool,
    /// Sizes of the `log-line` checks' files when the start began; a check
    /// only looks at what was written after. Files not listed are read
    /// from the beginning.
    pub log_offsets: BTreeMap<PathBuf, u64>,
}

impl ProbeContext {
    /// For probing a running instance (`nixproc status`): whole log files,
    /// commands as the instance's user when running as root.
    pub fn new() -> Self {
        ProbeContext {
            switch_user: rustix::process::geteuid().is_root(),
            log_offsets: BTreeMap::new(),
        }
    }

    /// Records the current size of every log file `inst`'s `log-line`
    /// checks read (0 for a missing file): call just before the start.
    pub fn before_start(inst: &InstanceEntry) -> Self {
        let mut ctx = Self::new();
        for check in checks(inst) {
            if let ReadinessCheck::LogLine { file, .. } = check {
                if let Some(path) = file.as_deref().or(inst.log_file.as_deref()) {
                    let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                    ctx.log_offsets.insert(PathBuf::from(path), size);
                }
            }
        }
        ctx
    }
}

fn checks(inst: &InstanceEntry) -> &[ReadinessCheck] {
    inst.readiness
        .as_ref()
        .map(|r| r.checks.as_slice())
        .unwrap_or(&[])
}

/// The check in words, as progress and error messages show it.
pub fn describe(check: &ReadinessCheck, inst: &InstanceEntry) -> String {
    match check {
        ReadinessCheck::Tcp { host, port } => format!("tcp {}", host_port(host, *port)),
        ReadinessCheck::Http { url, status } => match status {
            Some(s) => format!("http {url} (status {s})"),
            None => format!("http {url}"),
        },
        ReadinessCheck::Command { command } => format!("command `{command}`"),
        ReadinessCheck::PidFile { path } => match path.as_deref().or(inst.pid_file.as_deref()) {
            Some(p) => format!("pid-file {p}"),
            None => "pid-file (none declared)".to_string(),
        },
        ReadinessCheck::LogLine { file, contains } => {
            match file.as_deref().or(inst.log_file.as_deref()) {
                Some(f) => format!("log-line {contains:?} in {f}"),
                None => format!("log-line {contains:?} (no log file declared)"),
            }
        }
    }
}

/// All checks of `inst` in words, joined by ", " (empty without readiness).
pub fn describe_all(inst: &InstanceEntry) -> String {
    checks(inst)
        .iter()
        .map(|c| describe(c, inst))
        .collect::<Vec<_>>()
        .join(", ")
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One attempt of every readiness check of `inst`, without waiting. Empty
/// when the instance declares none.
pub fn probe(inst: &InstanceEntry, ctx: &ProbeContext) -> Vec<CheckResult> {
    checks(inst)
        .iter()
        .map(|c| probe_one(c, inst, ctx, Duration::from_secs(30)))
        .collect()
}

fn probe_one(
    check: &ReadinessCheck,
    inst: &InstanceEntry,
    ctx: &ProbeContext,
    budget: Duration,
) -> CheckResult {
    let result = match check {
        ReadinessCheck::Tcp { host, port } => tcp(host, *port).map(|_| String::new()),
        ReadinessCheck::Http { url, status } => http(url, *status),
        ReadinessCheck::Command { command } => run_command(command, inst, ctx, budget),
        ReadinessCheck::PidFile { path } => pid_file(path.as_deref().or(inst.pid_file.as_deref())),
        ReadinessCheck::LogLine { file, contains } => {
            log_line(file.as_deref().or(inst.log_file.as_deref()), contains, ctx)
        }
    };
    let check = describe(check, inst);
    match result {
        Ok(detail) => CheckResult {
            check,
            ok: true,
            detail,
        },
        Err(e) => CheckResult {
            check,
            ok: false,
            detail: format!("{e:#}"),
        },
    }
}

/// Waits until every readiness check of `inst` passes; returns the time
/// since `started_at` (when the start began). Without readiness checks the
/// instance is ready at once. A timeout is an error naming the check that
/// did not pass and what it saw last:
/// `tcp 127.0.0.1:5000: connection refused after 30 s`.
pub fn wait_ready(
    inst: &InstanceEntry,
    ctx: &ProbeContext,
    started_at: Instant,
    progress: &dyn Progress,
) -> Result<Duration> {
    let Some(readiness) = &inst.readiness else {
        return Ok(started_at.elapsed());
    };
    if readiness.checks.is_empty() {
        return Ok(started_at.elapsed());
    }
    let described = describe_all(inst);
    progress.event(&Event::WaitingReady {
        name: &inst.name,
        check: &described,
    });
    let after = poll(inst, readiness, ctx, started_at)?;
    progress.event(&Event::Ready {
        name: &inst.name,
        after,
    });
    Ok(after)
}

fn poll(
    inst: &InstanceEntry,
    readiness: &Readiness,
    ctx: &ProbeContext,
    started_at: Instant,
) -> Result<Duration> {
    let timeout = Duration::from_secs(readiness.timeout);
    let interval = Duration::from_millis(readiness.interval);
    let waiting = Instant::now();
    let deadline = waiting + timeout;
    let mut passed = vec![false; readiness.checks.len()];
    loop {
        let mut last_failure = None;
        for (i, check) in readiness.checks.iter().enumerate() {
            if passed[i] {
                continue;
            }
            let budget = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            let r = probe_one(check, inst, ctx, budget);
            if r.ok {
                passed[i] = true;
            } else {
                // Checks are in order: later ones wait for earlier ones.
                last_failure = Some(r);
                break;
            }
        }
        let Some(failure) = last_failure else {
            return Ok(started_at.elapsed());
        };
        let now = Instant::now();
        if now >= deadline {
            bail!(
                "{} is not ready: {}: {} after {} s",
                inst.name,
                failure.check,
                failure.detail,
                readiness.timeout
            );
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

/// An io error in words without the "(os error N)" suffix, lower-case:
/// `connection refused`.
fn io_words(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    match (host, port).to_socket_addrs() {
        Ok(a) => {
            let addrs: Vec<SocketAddr> = a.collect();
            if addrs.is_empty() {
                bail!("{host} has no address");
            }
            Ok(addrs)
        }
        Err(e) => bail!("cannot resolve {host}: {}", io_words(&e)),
    }
}

fn tcp(host: &str, port: u16) -> Result<TcpStream> {
    let mut last = None;
    for addr in resolve(host, port)? {
        match TcpStream::connect_timeout(&addr, NET_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => bail!("{}", io_words(&e)),
        None => bail!("no address to connect to"),
    }
}

/// `http://host[:port][/path]` → (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url:?} is not a plain http:// URL");
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let path = path.split('#').next().unwrap_or("/").to_string();
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h.to_string(), p.strip_prefix(':').unwrap_or("")),
            None => bail!("{url:?}: unterminated IPv6 address"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None => (authority.to_string(), ""),
        }
    };
    if host.is_empty() {
        bail!("{url:?} has no host");
    }
    let port = if port.is_empty() {
        80
    } else {
        port.parse()
            .map_err(|_| anyhow::anyhow!("{url:?}: bad port {port:?}"))?
    };
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        bail!("{url:?}: the path has spaces or control characters");
    }
    Ok((host, port, path))
}

fn http(url: &str, expect: Option<u16>) -> Result<String> {
    let (host, port, path) = parse_url(url)?;
    let mut stream = tcp(&host, port)?;
    stream.set_read_timeout(Some(NET_TIMEOUT))?;
    stream.set_write_timeout(Some(NET_TIMEOUT))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: nixproc\r\nConnection: close\r\n\r\n",
        host_port(&host, port)
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| anyhow::anyhow!("sending the request: {}", io_words(&e)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 8192 {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => bail!("reading the answer: {}", io_words(&e)),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("").trim_end();
    let status = parse_status_line(line)?;
    let ok = match expect {
        Some(s) => status == s,
        None => (200..400).contains(&status),
    };
    if ok {
        Ok(format!("HTTP {status}"))
    } else {
        bail!("answered {line:?}")
    }
}

/// The status code of `HTTP/1.x 200 OK`.
fn parse_status_line(line: &str) -> Result<u16> {
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        if line.is_empty() {
            bail!("no answer");
        }
        bail!("not an HTTP answer: {line:?}");
    }
    match words.next().and_then(|c| c.parse::<u16>().ok()) {
        Some(c) if (100..=599).contains(&c) => Ok(c),
        _ => bail!("not an HTTP status line: {line:?}"),
    }
}

fn run_command(
    command: &str,
    inst: &InstanceEntry,
    ctx: &ProbeContext,
    budget: Duration,
) -> Result<String> {
    let cmd = match (&inst.user, ctx.switch_user) {
        (Some(user), true) => Cmd::new("su")
            .arg("-s")
            .arg("/bin/sh")
            .arg("-c")
            .arg(command)
            .arg("--")
            .arg(user),
        _ => Cmd::new("/bin/sh").arg("-c").arg(command),
    }
    .timeout(budget);
    let out = SystemRunner.run(&cmd)?;
    if out.success() {
        return Ok(String::new());
    }
    let last = out
        .stderr
        .lines()
        .chain(out.stdout.lines())
        .rfind(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    bail!("{}{last}", out.exit)
}

fn pid_file(path: Option<&str>) -> Result<String> {
    let Some(path) = path else {
        bail!("the instance declares no pid file and the check names none");
    };
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => bail!("{}", io_words(&e)),
    };
    let pid: i32 = match text.trim().parse() {
        Ok(p) if p > 0 => p,
        _ => bail!("does not hold a PID: {:?}", text.trim()),
    };
    if pid_alive(pid) {
        Ok(format!("PID {pid}"))
    } else {
        bail!("PID {pid} is not running")
    }
}

/// `kill(pid, 0)`: the process exists (EPERM: it exists, as someone else).
pub fn pid_alive(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

fn log_line(file: Option<&str>, contains: &str, ctx: &ProbeContext) -> Result<String> {
    let Some(file) = file else {
        bail!("the instance declares no log file and the check names none");
    };
    let offset = ctx.log_offsets.get(Path::new(file)).copied().unwrap_or(0);
    let mut f = match fs::File::open(file) {
        Ok(f) => f,
        Err(e) => bail!("{}", io_words(&e)),
    };
    let len = f.metadata()?.len();
    // A file that shrank was rotated or truncated: all of it is new.
    let from = if len < offset { 0 } else { offset };
    let from = from.max(len.saturating_sub(LOG_READ_LIMIT));
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.take(LOG_READ_LIMIT).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    if text.lines().any(|l| l.contains(contains)) {
        Ok(String::new())
    } else {
        bail!("no such line yet")
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::net::TcpListener;

    use super::*;
    use crate::deploy::progress::RecordingProgress;
    use crate::deploy::testutil::inst;

    fn with(checks: Vec<ReadinessCheck>, timeout: u64, interval: u64) -> InstanceEntry {
        let mut i = inst("web", "1", &[]);
        i.readiness = Some(Readiness {
            checks,
            timeout,
            interval,
        });
        i
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// A one-shot HTTP server answering `status_line` to every request.
    fn http_server(status_line: &'static str) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                request.push_str(&line);
            }
            (&s).write_all(status_line.as_bytes()).unwrap();
            (&s).write_all(b"\r\n\r\nbody").unwrap();
            request
        });
        (port, h)
    }

    #[test]
    fn no_readiness_is_ready_at_once_without_events() {
        let progress = RecordingProgress::default();
        let i = inst("web", "1", &[]);
        wait_ready(&i, &ProbeContext::default(), Instant::now(), &progress).unwrap();
        assert!(progress.all_lines().is_empty());
        assert!(probe(&i, &ProbeContext::default()).is_empty());
    }

    #[test]
    fn tcp_check_passes_on_a_listening_port_and_names_the_refusal() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let i = with(
            vec![ReadinessCheck::Tcp {
                host: "127.0.0.1".into(),
                port,
            }],
            1,
            50,
        );
        let r = probe(&i, &ProbeContext::default());
        assert_eq!(r.len(), 1);
        assert!(r[0].ok, "{r:?}");
        assert_eq!(r[0].check, format!("tcp 127.0.0.1:{port}"));
        drop(l);
        let port = free_port();
        let i = with(
            vec![ReadinessCheck::Tcp {
                host: "127.0.0.1".into(),
                port,
            }],
            1,
            50,
        );
        let progress = RecordingProgress::default();
        let err = wait_ready(&i, &ProbeContext::default(), Instant::now(), &progress)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("web is not ready: tcp 127.0.0.1:{port}: connection refused after 1 s")
        );
        assert_eq!(
            progress.lines(),
            [format!(
                "waiting for web to be ready (tcp 127.0.0.1:{port})"
            )]
        );
    }

    #[test]
    fn tcp_check_waits_for_a_late_listener() {
        let port = free_port();
        let i = with(
            vec![ReadinessCheck::Tcp {
                host: "localhost".into(),
                port,
            }],
            20,
            20,
        );
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
            std::thread::sleep(Duration::from_secs(3));
            drop(l);
        });
        let progress = RecordingProgress::default();
        let start = Instant::now();
        let after = wait_ready(&i, &ProbeContext::default(), start, &progress).unwrap();
        assert!(after >= Duration::from_millis(300));
        assert_eq!(progress.all_lines().len(), 2);
        assert!(progress.all_lines()[1].starts_with("web is ready ("));
        t.join().unwrap();
    }

    #[test]
    fn http_check_sends_a_get_and_reads_the_status() {
        let (port, h) = http_server("HTTP/1.1 200 OK");
        let url = format!("http://127.0.0.1:{port}/health?x=1");
        assert_eq!(http(&url, None).unwrap(), "HTTP 200");
        let request = h.join().unwrap();
        assert!(
            request.starts_with("GET /health?x=1 HTTP/1.0\r\nHost: 127.0.0.1:"),
            "{request}"
        );

        let (port, _h) = http_server("HTTP/1.0 503 Service Unavailable");
        let url = format!("http://127.0.0.1:{port}");
        assert_eq!(
            http(&url, None).unwrap_err().to_string(),
            "answered \"HTTP/1.0 503 Service Unavailable\""
        );
        let (port, _h) = http_server("HTTP/1.0 503 Service Unavailable");
        assert_eq!(
            http(&format!("http://127.0.0.1:{port}/"), Some(503)).unwrap(),
            "HTTP 503"
        );
        let (port, _h) = http_server("SSH-2.0-OpenSSH");
        assert_eq!(
            http(&format!("http://127.0.0.1:{port}/"), None)
                .unwrap_err()
                .to_string(),
            "not an HTTP answer: \"SSH-2.0-OpenSSH\""
        );
        let port = free_port();
        let e = http(&format!("http://127.0.0.1:{port}/"), None).unwrap_err();
        assert_eq!(e.to_string(), "connection refused");
    }

    #[test]
    fn urls_are_parsed_strictly() {
        assert_eq!(
            parse_url("http://example.org").unwrap(),
            ("example.org".into(), 80, "/".into())
        );
        assert_eq!(
            parse_url("http://[::1]:8080/a/b#frag").unwrap(),
            ("::1".into(), 8080, "/a/b".into())
        );
        assert_eq!(
            parse_url("http://h:1?q").unwrap(),
            ("h".into(), 1, "/?q".into())
        );
        for bad in [
            "https://x/",
            "http:///x",
            "http://h:99999/",
            "http://h/a b",
            "http://h/a\r\nInjected: 1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_check_runs_sh_and_reports_the_last_output_line() {
        let ok = with(
            vec![ReadinessCheck::Command {
                command: "test \"$(echo 'a;b')\" = 'a;b'".into(),
            }],
            1,
            50,
        );
        let r = probe(&ok, &ProbeContext::default());
        assert!(r[0].ok, "{r:?}");
        let hostile = "echo \"not yet: $(printf '%s' \\`x\\`) ü\" >&2; exit 3";
        let bad = with(
            vec![ReadinessCheck::Command {
                command: hostile.into(),
            }],
            1,
            100,
        );
        let r = probe(&bad, &ProbeContext::default());
        assert_eq!(
            r,
            [CheckResult {
                check: format!("command `{hostile}`"),
                ok: false,
                detail: "exited with status 3: not yet: `x` ü".into(),
            }]
        );
    }

    #[test]
    fn pid_file_check_needs_a_live_process() {
        let tmp = tempfile::tempdir().unwrap();
        let pid = tmp.path().join("web.pid");
        let mut i = with(vec![ReadinessCheck::PidFile { path: None }], 1, 50);
        let r = probe(&i, &ProbeContext::default());
        assert_eq!(r[0].check, "pid-file (none declared)");
        assert!(!r[0].ok);
        i.pid_file = Some(pid.to_string_lossy().into());
        let r = probe(&i, &ProbeContext::default());
        assert_eq!(r[0].detail, "no such file or directory");
        fs::write(&pid, format!("{}\n", std::process::id())).unwrap();
        let r = probe(&i, &ProbeContext::default());
        assert!(r[0].ok, "{r:?}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        fs::write(&pid, format!("{dead}\n")).unwrap();
        let r = probe(&i, &ProbeContext::default());
        assert_eq!(r[0].detail, format!("PID {dead} is not running"));
        fs::write(&pid, "$(rm -rf /)\n").unwrap();
        let r = probe(&i, &ProbeContext::default());
        assert_eq!(r[0].detail, "does not hold a PID: \"$(rm -rf /)\"");
    }

    #[test]
    fn log_line_check_only_sees_lines_written_after_the_start() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("web.log");
        fs::write(&log, "listening on 5000\n").unwrap();
        let mut i = with(
            vec![ReadinessCheck::LogLine {
                file: None,
                contains: "listening on".into(),
            }],
            1,
            50,
        );
        i.log_file = Some(log.to_string_lossy().into());
        let ctx = ProbeContext::before_start(&i);
        assert_eq!(ctx.log_offsets[&log], 18);
        let r = probe(&i, &ctx);
        assert_eq!(r[0].detail, "no such line yet", "the old line is ignored");
        assert_eq!(
            r[0].check,
            format!("log-line \"listening on\" in {}", log.display())
        );
        let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(f, "ünïcode; `x` $(y) listening on 5000").unwrap();
        assert!(probe(&i, &ctx)[0].ok);
        // Without offsets (status), the whole file counts.
        assert!(probe(&i, &ProbeContext::default())[0].ok);
        // Truncated (rotated) file: everything in it is new.
        fs::write(&log, "listening on 6000\n").unwrap();
        let mut ctx = ctx;
        ctx.log_offsets.insert(log.clone(), 1000);
        assert!(probe(&i, &ctx)[0].ok);
    }

    #[test]
    fn checks_run_in_order_and_the_first_failing_one_is_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let i = with(
            vec![
                ReadinessCheck::Tcp {
                    host: "127.0.0.1".into(),
                    port,
                },
                ReadinessCheck::Command {
                    command: "exit 1".into(),
                },
            ],
            1,
            200,
        );
        let err = wait_ready(
            &i,
            &ProbeContext::default(),
            Instant::now(),
            &RecordingProgress::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "web is not ready: command `exit 1`: exited with status 1 after 1 s"
        );
        assert_eq!(
            describe_all(&i),
            format!("tcp 127.0.0.1:{port}, command `exit 1`")
        );
    }
}
