//! `nixproc logs`: where each backend keeps an instance's output, the last
//! lines of a file, and following files as they grow.
//!
//! Where the log is ([`log_source`]), per backend:
//! * sysvinit, bsdrc, disnix: the manifest's `logFile` (nixproc's daemon
//!   wrapper writes a foreground process's output there), else
//!   `<log-dir>/<name>.log`;
//! * supervisord: the program's `stdout_logfile` (and `stderr_logfile`
//!   unless `redirect_stderr`) from its config in the profile; a program
//!   logging to supervisord's automatic files: `supervisorctl tail`;
//! * s6-rc: the log service's `current` (the manifest's `logFile`); a
//!   service without one writes to s6-svscan's output,
//!   `<log-dir>/s6-svscan.log`;
//! * systemd: `journalctl -u <unit>` (`--user` for user units);
//! * launchd: the plist's `StandardOutPath` and `StandardErrorPath`;
//! * docker: `docker logs`;
//! * cygrunsrv: the service's `--stdout`/`--stderr` files, else
//!   cygrunsrv's default `/var/log/<service>.log`.
//!
//! Following ([`follow`]) polls the files: new bytes are printed as they
//! arrive; a file that shrinks was truncated and is read again from its
//! start; a file whose inode changes was rotated: the rest of the old one
//! is printed, then the new one from its start; a file that does not exist
//! yet is waited for.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nixproc_core::manifest::{Backend, InstanceEntry};

use crate::deploy::manifest::within_profile;
use crate::deploy::runner::Cmd;
use crate::deploy::select::ActivatorConfig;

/// Where an instance's output can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    File(PathBuf),
    /// Several files (e.g. separate stdout and stderr logs), shown one
    /// after the other with a `==> file <==` header each.
    Files(Vec<PathBuf>),
    /// The backend keeps the log itself; a command shows it.
    Command(LogCommand),
    /// The instance's output goes nowhere nixproc can find; why.
    Nothing(String),
}

/// A backend command showing an instance's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCommand {
    /// `journalctl [--user] -u <unit>`.
    Journal { unit: String, user: bool },
    /// `docker logs <container>`.
    Docker { container: String },
    /// `supervisorctl -c <conf> tail <name>` (supervisord's automatic log
    /// files, whose names only supervisord knows).
    Supervisorctl { conf: PathBuf, name: String },
}

/// How many bytes `supervisorctl tail` shows per requested line (it counts
/// bytes, not lines).
const SUPERVISORCTL_BYTES_PER_LINE: usize = 200;

impl LogCommand {
    /// The command showing the last `lines` lines, following with `follow`.
    pub fn cmd(&self, lines: usize, follow: bool) -> Cmd {
        match self {
            LogCommand::Journal { unit, user } => {
                let mut c = Cmd::new("journalctl");
                if *user {
                    c = c.arg("--user");
                }
                c = c
                    .arg("-u")
                    .arg(unit)
                    .arg("-n")
                    .arg(lines.to_string())
                    .arg("--no-pager");
                if follow {
                    c = c.arg("-f");
                }
                c
            }
            LogCommand::Docker { container } => {
                let mut c = Cmd::new("docker")
                    .arg("logs")
                    .arg("--tail")
                    .arg(lines.to_string());
                if follow {
                    c = c.arg("-f");
                }
                c.arg(container)
            }
            LogCommand::Supervisorctl { conf, name } => {
                let mut c = Cmd::new("supervisorctl").arg("-c").arg(conf).arg("tail");
                if follow {
                    c = c.arg("-f");
                } else {
                    c = c.arg(format!(
                        "-{}",
                        lines.max(1).saturating_mul(SUPERVISORCTL_BYTES_PER_LINE)
                    ));
                }
                c.arg(name)
            }
        }
    }
}

/// Where `inst` (deployed from `profile`, the generation's store path)
/// logs. Reads the instance's files in the profile where the backend's
/// configuration says it (supervisord, launchd, cygrunsrv); a file that
/// cannot be read falls back to the manifest's `logFile`.
pub fn log_source(inst: &InstanceEntry, config: &ActivatorConfig, profile: &Path) -> LogSource {
    let manifest_log = inst.log_file.as_ref().map(PathBuf::from);
    let in_profile = |rel: &str| within_profile(rel).then(|| profile.join(rel));
    let files = |v: Vec<PathBuf>| -> Option<LogSource> {
        let mut v = dedup(v);
        match v.len() {
            0 => None,
            1 => v.pop().map(LogSource::File),
            _ => Some(LogSource::Files(v)),
        }
    };
    match &inst.backend {
        Backend::Sysvinit { .. } | Backend::Bsdrc { .. } | Backend::Disnix { .. } => {
            LogSource::File(
                manifest_log.unwrap_or_else(|| config.state.log.join(format!("{}.log", inst.name))),
            )
        }
        Backend::Supervisord { config: conf, .. } => {
            let text = in_profile(conf).and_then(|p| fs::read_to_string(&p).ok().map(|t| (p, t)));
            let main_conf = crate::deploy::supervisord::SupervisordActivator::new(
                crate::deploy::runner::SystemRunner,
                config,
            )
            .main_conf();
            let ctl = LogSource::Command(LogCommand::Supervisorctl {
                conf: main_conf,
                name: inst.name.clone(),
            });
            match text {
                Some((path, text)) => {
                    let here = path.parent().unwrap_or(Path::new("/"));
                    match supervisord_log_files(&text, &inst.name, here) {
                        SupervisordLogs::Files(v) => files(v).unwrap_or(ctl),
                        SupervisordLogs::Auto => ctl,
                        SupervisordLogs::NoneConfigured => LogSource::Nothing(format!(
                            "{}: its supervisord program logs nowhere (stdout_logfile=NONE)",
                            inst.name
                        )),
                    }
                }
                None => manifest_log.map(LogSource::File).unwrap_or(ctl),
            }
        }
        Backend::S6Rc { .. } => {
            LogSource::File(manifest_log.unwrap_or_else(|| config.state.log.join("s6-svscan.log")))
        }
        Backend::Systemd { unit, .. } => LogSource::Command(LogCommand::Journal {
            unit: unit.clone(),
            user: config.systemd_user,
        }),
        Backend::Launchd { plist, .. } => {
            let from_plist = in_profile(plist)
                .and_then(|p| fs::read_to_string(p).ok())
                .map(|t| {
                    ["StandardOutPath", "StandardErrorPath"]
                        .iter()
                        .filter_map(|k| plist_string(&t, k))
                        .map(PathBuf::from)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            files(from_plist)
                .or_else(|| manifest_log.map(LogSource::File))
                .unwrap_or_else(|| {
                    LogSource::Nothing(format!(
                        "{}: its launchd job has no StandardOutPath or StandardErrorPath",
                        inst.name
                    ))
                })
        }
        Backend::Docker { container, .. } => LogSource::Command(LogCommand::Docker {
            container: container.clone(),
        }),
        Backend::Cygrunsrv {
            service, params, ..
        } => {
            let from_params = in_profile(params)
                .and_then(|p| fs::read_to_string(p).ok())
                .map(|t| cygrunsrv_log_files(&t))
                .unwrap_or_default();
            files(from_params)
                .or_else(|| manifest_log.map(LogSource::File))
                .unwrap_or_else(|| {
                    LogSource::File(PathBuf::from(format!("/var/log/{service}.log")))
                })
        }
    }
}

fn dedup(v: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in v {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// What a supervisord program's config says about its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisordLogs {
    Files(Vec<PathBuf>),
    /// `AUTO` (the default): files in supervisord's `childlogdir` whose
    /// names only supervisord knows.
    Auto,
    /// `NONE` for stdout, and stderr redirected or `NONE` too.
    NoneConfigured,
}

/// The log files of `[program:<name>]` in a supervisord config:
/// `stdout_logfile`, and `stderr_logfile` unless `redirect_stderr` is true.
/// `%(program_name)s` and `%(here)s` (the config's directory) are expanded;
/// other expansions make the file unknown (→ `Auto`).
pub fn supervisord_log_files(conf: &str, name: &str, here: &Path) -> SupervisordLogs {
    let section = format!("[program:{name}]");
    let mut in_section = false;
    let (mut stdout, mut stderr, mut redirect) = (None, None, false);
    for line in conf.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == section;
            continue;
        }
        if !in_section || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "stdout_logfile" => stdout = Some(v),
            "stderr_logfile" => stderr = Some(v),
            "redirect_stderr" => {
                redirect = matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
            }
            _ => {}
        }
    }
    let streams: Vec<Option<String>> = if redirect {
        vec![stdout]
    } else {
        vec![stdout, stderr]
    };
    let mut files = Vec::new();
    let mut auto = false;
    for s in streams {
        let v = s.unwrap_or_else(|| "AUTO".to_string());
        match v.to_ascii_uppercase().as_str() {
            "NONE" => {}
            "AUTO" => auto = true,
            _ => {
                let v = v
                    .replace("%(program_name)s", name)
                    .replace("%(here)s", &here.to_string_lossy())
                    .replace("%%", "%");
                if v.contains("%(") {
                    auto = true;
                } else {
                    files.push(PathBuf::from(v));
                }
            }
        }
    }
    if auto && files.is_empty() {
        SupervisordLogs::Auto
    } else if files.is_empty() {
        SupervisordLogs::NoneConfigured
    } else {
        SupervisordLogs::Files(files)
    }
}

/// The `<string>` following `<key>KEY</key>` in an XML plist, unescaped.
pub fn plist_string(plist: &str, key: &str) -> Option<String> {
    let tag = format!("<key>{key}</key>");
    let rest = plist[plist.find(&tag)? + tag.len()..].trim_start();
    let rest = rest.strip_prefix("<string>")?;
    let value = &rest[..rest.find("</string>")?];
    Some(xml_unescape(value))
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The files after `--stdout` and `--stderr` in a cygrunsrv parameters
/// file (one argument per line).
pub fn cygrunsrv_log_files(params: &str) -> Vec<PathBuf> {
    let lines: Vec<&str> = params.lines().collect();
    let mut out = Vec::new();
    for flag in ["--stdout", "--stderr"] {
        if let Some(i) = lines.iter().position(|l| *l == flag) {
            if let Some(v) = lines.get(i + 1).filter(|v| !v.is_empty()) {
                out.push(PathBuf::from(v));
            }
        }
    }
    out
}

/// Bytes read per step when looking for line starts from the end.
const CHUNK: u64 = 64 * 1024;

/// The last `n` lines of `file` (bytes, as written: non-UTF-8 output is
/// passed through). A last line without a newline counts as a line.
pub fn last_lines(file: &mut File, n: usize) -> io::Result<Vec<u8>> {
    let len = file.seek(SeekFrom::End(0))?;
    last_lines_until(file, n, len)
}

/// The last `n` lines of the first `len` bytes of `file`.
pub fn last_lines_until(file: &mut File, n: usize, len: u64) -> io::Result<Vec<u8>> {
    if n == 0 || len == 0 {
        return Ok(Vec::new());
    }
    let mut pos = len;
    let mut buf: Vec<u8> = Vec::new();
    // Newlines needed before the first wanted byte: n, plus the final one.
    loop {
        let step = CHUNK.min(pos);
        pos -= step;
        file.seek(SeekFrom::Start(pos))?;
        let mut chunk = vec![0; step as usize];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        let body = if buf.last() == Some(&b'\n') {
            &buf[..buf.len() - 1]
        } else {
            &buf[..]
        };
        let newlines: Vec<usize> = body
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        if newlines.len() >= n {
            let start = newlines[newlines.len() - n] + 1;
            return Ok(buf[start..].to_vec());
        }
        if pos == 0 {
            return Ok(buf);
        }
    }
}

/// Prints the last `n` lines of each file; with several, each under a
/// `==> file <==` header (as `tail`). Missing files are reported on the
/// way; it is an error only when none exists.
pub fn print_last_lines(paths: &[PathBuf], n: usize, out: &mut dyn Write) -> Result<()> {
    let mut found = 0;
    let mut missing = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let mut f = match File::open(p) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(p.display().to_string());
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("opening {}", p.display())),
        };
        if paths.len() > 1 {
            if i > 0 {
                writeln!(out)?;
            }
            writeln!(out, "==> {} <==", p.display())?;
        }
        let bytes = last_lines(&mut f, n).with_context(|| format!("reading {}", p.display()))?;
        out.write_all(&bytes)?;
        if bytes.last().is_some_and(|&b| b != b'\n') {
            out.write_all(b"\n")?;
        }
        found += 1;
    }
    out.flush()?;
    if found == 0 {
        bail!(
            "no log file yet: {} does not exist (has the instance written anything?)",
            missing.join(", ")
        );
    }
    for m in missing {
        eprintln!("nixproc: {m} does not exist yet");
    }
    Ok(())
}

/// One followed file.
struct Followed {
    path: PathBuf,
    file: Option<File>,
    /// (device, inode) of the open file.
    id: (u64, u64),
    pos: u64,
}

impl Followed {
    /// Opens `path` positioned at its end (or at 0 when `from_start`).
    fn open(&mut self, from_start: bool) -> io::Result<bool> {
        match File::open(&self.path) {
            Ok(mut f) => {
                let m = f.metadata()?;
                self.id = (m.dev(), m.ino());
                self.pos = if from_start {
                    0
                } else {
                    f.seek(SeekFrom::End(0))?
                };
                self.file = Some(f);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.file = None;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads what was appended since the last read.
    fn read_new(&mut self) -> io::Result<Vec<u8>> {
        let Some(f) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        f.seek(SeekFrom::Start(self.pos))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.pos += buf.len() as u64;
        Ok(buf)
    }

    /// New bytes, handling truncation, rotation and late creation; notes
    /// (`truncated`, `replaced`) go to `notes`.
    fn poll(&mut self, notes: &mut Vec<String>) -> io::Result<Vec<u8>> {
        let Some(f) = self.file.as_ref() else {
            if self.open(true)? {
                notes.push(format!("{} appeared; following it", self.path.display()));
            }
            return self.read_new();
        };
        let current = fs::metadata(&self.path);
        let mut out = Vec::new();
        match current {
            Ok(m) if (m.dev(), m.ino()) != self.id => {
                // Rotated: finish the old file, then the new one from its start.
                out = self.read_new()?;
                notes.push(format!(
                    "{} was replaced; following the new file",
                    self.path.display()
                ));
                self.open(true)?;
                out.extend(self.read_new()?);
            }
            Ok(_) | Err(_) => {
                let len = f.metadata()?.len();
                if len < self.pos {
                    notes.push(format!("{} was truncated", self.path.display()));
                    self.pos = 0;
                }
                out.extend(self.read_new()?);
            }
        }
        Ok(out)
    }
}

/// Follows `paths` from their current ends, writing new output to `out`
/// every `interval` until `stop` says so. With several files, a
/// `==> file <==` header precedes output from a file other than the last
/// one printed. Notes (truncated, rotated) go to stderr.
pub fn follow(
    paths: &[PathBuf],
    out: &mut dyn Write,
    interval: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    let mut followed = open_at_end(paths)?;
    follow_loop(&mut followed, out, interval, stop)
}

/// `tail -n N -F`: the last `n` lines of each file, then what is appended
/// after. The files' ends are taken once, before printing, so nothing
/// written meanwhile is lost or printed twice. Files that do not exist yet
/// are waited for.
pub fn tail_and_follow(
    paths: &[PathBuf],
    n: usize,
    out: &mut dyn Write,
    interval: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    let mut followed = open_at_end(paths)?;
    let mut first = true;
    for f in followed.iter_mut() {
        let Some(file) = f.file.as_mut() else {
            eprintln!("nixproc: waiting for {} to appear", f.path.display());
            continue;
        };
        if paths.len() > 1 {
            if !first {
                writeln!(out)?;
            }
            writeln!(out, "==> {} <==", f.path.display())?;
        }
        first = false;
        let bytes = last_lines_until(file, n, f.pos)
            .with_context(|| format!("reading {}", f.path.display()))?;
        out.write_all(&bytes)?;
        if bytes.last().is_some_and(|&b| b != b'\n') {
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    follow_loop(&mut followed, out, interval, stop)
}

fn open_at_end(paths: &[PathBuf]) -> Result<Vec<Followed>> {
    let mut followed: Vec<Followed> = paths
        .iter()
        .map(|p| Followed {
            path: p.clone(),
            file: None,
            id: (0, 0),
            pos: 0,
        })
        .collect();
    for f in &mut followed {
        f.open(false)
            .with_context(|| format!("opening {}", f.path.display()))?;
    }
    Ok(followed)
}

fn follow_loop(
    followed: &mut [Followed],
    out: &mut dyn Write,
    interval: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    let several = followed.len() > 1;
    let mut last_shown = followed.len().saturating_sub(1);
    loop {
        for (i, f) in followed.iter_mut().enumerate() {
            let mut notes = Vec::new();
            let bytes = f
                .poll(&mut notes)
                .with_context(|| format!("reading {}", f.path.display()))?;
            for n in notes {
                eprintln!("nixproc: {n}");
            }
            if bytes.is_empty() {
                continue;
            }
            if several && i != last_shown {
                writeln!(out, "\n==> {} <==", f.path.display())?;
                last_shown = i;
            }
            out.write_all(&bytes)?;
            out.flush()?;
        }
        if stop() {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dirs::StateDirs;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    fn config() -> ActivatorConfig {
        ActivatorConfig {
            state: StateDirs::from_state_dir("/s", &Default::default()),
            force_disable_user_change: true,
            runlevel: 3,
            systemd_user: false,
            enable_at_boot: false,
        }
    }

    fn entry(name: &str, backend: Backend, log: Option<&str>) -> InstanceEntry {
        InstanceEntry {
            key: name.into(),
            name: name.into(),
            description: name.into(),
            revision: "r".into(),
            dependencies: vec![],
            pid_file: None,
            log_file: log.map(String::from),
            user: None,
            backend,
            state: None,
            readiness: None,
        }
    }

    fn profile_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (rel, text) in files {
            let p = d.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        d
    }

    #[test]
    fn sysvinit_bsdrc_disnix_use_the_manifest_log_or_the_log_dir() {
        let cfg = config();
        for b in [
            Backend::Sysvinit {
                script: "etc/rc.d/init.d/web".into(),
                start_runlevels: vec![3],
                sequence: 0,
            },
            Backend::Bsdrc {
                script: "etc/rc.d/web".into(),
            },
            Backend::Disnix {
                component: "etc/dysnomia/process/web".into(),
                process: "/bin/web".into(),
            },
        ] {
            let with = entry("web", b.clone(), Some("/s/log/nixproc-web.log"));
            assert_eq!(
                log_source(&with, &cfg, Path::new("/p")),
                LogSource::File("/s/log/nixproc-web.log".into())
            );
            let without = entry("web", b, None);
            assert_eq!(
                log_source(&without, &cfg, Path::new("/p")),
                LogSource::File("/s/log/web.log".into())
            );
        }
    }

    fn sup(name: &str) -> Backend {
        Backend::Supervisord {
            config: format!("conf.d/{name}.conf"),
            priority: 1,
        }
    }

    #[test]
    fn supervisord_reads_the_program_config() {
        let p = profile_with(&[(
            "conf.d/web.conf",
            "[program:web]\ncommand=/bin/web\nredirect_stderr=true\nstdout_logfile=/s/log/web.out\nstderr_logfile=/s/log/ignored\n",
        )]);
        assert_eq!(
            log_source(&entry("web", sup("web"), None), &config(), p.path()),
            LogSource::File("/s/log/web.out".into())
        );
        let p = profile_with(&[(
            "conf.d/web.conf",
            "[program:other]\nstdout_logfile=/wrong\n[program:web]\nstdout_logfile = %(here)s/%(program_name)s.out\nstderr_logfile=/s/log/web.err\n",
        )]);
        let here = p.path().join("conf.d");
        assert_eq!(
            log_source(&entry("web", sup("web"), None), &config(), p.path()),
            LogSource::Files(vec![here.join("web.out"), "/s/log/web.err".into()])
        );
    }

    #[test]
    fn supervisord_auto_logs_are_read_through_supervisorctl() {
        let p = profile_with(&[("conf.d/web.conf", "[program:web]\ncommand=/bin/web\n")]);
        let src = log_source(&entry("web", sup("web"), None), &config(), p.path());
        let LogSource::Command(c) = src else {
            panic!("{src:?}")
        };
        assert_eq!(
            c.cmd(10, false).to_string(),
            "supervisorctl -c /s/lib/supervisord/supervisord.conf tail -2000 web"
        );
        assert_eq!(
            c.cmd(10, true).to_string(),
            "supervisorctl -c /s/lib/supervisord/supervisord.conf tail -f web"
        );
        let p = profile_with(&[(
            "conf.d/web.conf",
            "[program:web]\nstdout_logfile=NONE\nredirect_stderr=true\n",
        )]);
        assert!(matches!(
            log_source(&entry("web", sup("web"), None), &config(), p.path()),
            LogSource::Nothing(m) if m.contains("stdout_logfile=NONE")
        ));
    }

    #[test]
    fn supervisord_without_a_readable_config_uses_the_manifest_log() {
        let p = profile_with(&[]);
        assert_eq!(
            log_source(
                &entry("web", sup("web"), Some("/s/log/nixproc-web.log")),
                &config(),
                p.path()
            ),
            LogSource::File("/s/log/nixproc-web.log".into())
        );
        // a path escaping the profile is never read
        let evil = entry(
            "web",
            Backend::Supervisord {
                config: "../../etc/passwd".into(),
                priority: 1,
            },
            None,
        );
        assert!(matches!(
            log_source(&evil, &config(), p.path()),
            LogSource::Command(LogCommand::Supervisorctl { .. })
        ));
    }

    #[test]
    fn supervisord_config_parsing_details() {
        let here = Path::new("/h");
        assert_eq!(
            supervisord_log_files(
                "[program:web]\nstdout_logfile=AUTO\nstderr_logfile=/e\n",
                "web",
                here
            ),
            SupervisordLogs::Files(vec!["/e".into()])
        );
        assert_eq!(
            supervisord_log_files("[program:web]\n;stdout_logfile=/commented\n", "web", here),
            SupervisordLogs::Auto
        );
        assert_eq!(
            supervisord_log_files(
                "[program:web]\nstdout_logfile=/x/%(ENV_HOME)s.log\nredirect_stderr=true\n",
                "web",
                here
            ),
            SupervisordLogs::Auto
        );
        assert_eq!(
            supervisord_log_files(
                "[program:web]\nstdout_logfile=none\nstderr_logfile=NONE\n",
                "web",
                here
            ),
            SupervisordLogs::NoneConfigured
        );
        assert_eq!(
            supervisord_log_files("[program:webx]\nstdout_logfile=/x\n", "web", here),
            SupervisordLogs::Auto
        );
    }

    #[test]
    fn s6_rc_uses_the_log_service_or_svscans_output() {
        let b = Backend::S6Rc {
            kind: nixproc_core::manifest::S6Kind::Longrun,
            dir: "etc/s6/sv/web-srv".into(),
            log_dir: Some("etc/s6/sv/web-log".into()),
        };
        assert_eq!(
            log_source(
                &entry("web-srv", b.clone(), Some("/s/log/s6-log/web/current")),
                &config(),
                Path::new("/p")
            ),
            LogSource::File("/s/log/s6-log/web/current".into())
        );
        assert_eq!(
            log_source(&entry("web-srv", b, None), &config(), Path::new("/p")),
            LogSource::File("/s/log/s6-svscan.log".into())
        );
    }

    #[test]
    fn systemd_uses_the_journal() {
        let b = Backend::Systemd {
            unit: "nix-process-web.service".into(),
            path: "etc/systemd/system/nix-process-web.service".into(),
        };
        let LogSource::Command(c) =
            log_source(&entry("web", b.clone(), None), &config(), Path::new("/p"))
        else {
            panic!()
        };
        assert_eq!(
            c.cmd(50, false).to_string(),
            "journalctl -u nix-process-web.service -n 50 --no-pager"
        );
        let mut user = config();
        user.systemd_user = true;
        let LogSource::Command(c) = log_source(&entry("web", b, None), &user, Path::new("/p"))
        else {
            panic!()
        };
        assert_eq!(
            c.cmd(5, true).to_string(),
            "journalctl --user -u nix-process-web.service -n 5 --no-pager -f"
        );
    }

    #[test]
    fn docker_uses_docker_logs() {
        let b = Backend::Docker {
            container: "nixproc-web".into(),
            image_tag: "web:latest".into(),
            image: "/nix/store/x".into(),
            create_params: "p".into(),
            priority: 1,
        };
        let LogSource::Command(c) = log_source(&entry("web", b, None), &config(), Path::new("/p"))
        else {
            panic!()
        };
        assert_eq!(
            c.cmd(7, false).to_string(),
            "docker logs --tail 7 nixproc-web"
        );
        assert_eq!(
            c.cmd(7, true).to_string(),
            "docker logs --tail 7 -f nixproc-web"
        );
    }

    #[test]
    fn launchd_reads_both_paths_from_the_plist() {
        let plist = r#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
  <key>Label</key><string>org.nixos.web</string>
  <key>StandardOutPath</key>
  <string>/s/log/a&amp;b &lt;web&gt;.log</string>
  <key>StandardErrorPath</key><string>/s/log/web&#x2e;err</string>
</dict></plist>"#;
        let p = profile_with(&[("Library/LaunchDaemons/org.nixos.web.plist", plist)]);
        let b = Backend::Launchd {
            label: "org.nixos.web".into(),
            plist: "Library/LaunchDaemons/org.nixos.web.plist".into(),
        };
        assert_eq!(
            log_source(&entry("web", b.clone(), None), &config(), p.path()),
            LogSource::Files(vec!["/s/log/a&b <web>.log".into(), "/s/log/web.err".into()])
        );
        // the same file for both: one file
        let same = plist.replace("web&#x2e;err", "a&amp;b &lt;web&gt;.log");
        let p = profile_with(&[("Library/LaunchDaemons/org.nixos.web.plist", &same)]);
        assert_eq!(
            log_source(&entry("web", b.clone(), None), &config(), p.path()),
            LogSource::File("/s/log/a&b <web>.log".into())
        );
        // no plist paths and no manifest log: nothing, said so
        let p = profile_with(&[("Library/LaunchDaemons/org.nixos.web.plist", "<plist/>")]);
        assert!(matches!(
            log_source(&entry("web", b, None), &config(), p.path()),
            LogSource::Nothing(m) if m.contains("StandardOutPath")
        ));
    }

    #[test]
    fn cygrunsrv_reads_the_parameters_or_uses_its_default() {
        let b = Backend::Cygrunsrv {
            service: "nixproc-web".into(),
            params: "etc/cygrunsrv/nixproc-web".into(),
        };
        let p = profile_with(&[(
            "etc/cygrunsrv/nixproc-web",
            "--path\n/bin/web\n--stdout\n/s/log/web.out\n--stderr\n/s/log/web.err\n",
        )]);
        assert_eq!(
            log_source(&entry("web", b.clone(), None), &config(), p.path()),
            LogSource::Files(vec!["/s/log/web.out".into(), "/s/log/web.err".into()])
        );
        let p = profile_with(&[("etc/cygrunsrv/nixproc-web", "--path\n/bin/web\n")]);
        assert_eq!(
            log_source(&entry("web", b, None), &config(), p.path()),
            LogSource::File("/var/log/nixproc-web.log".into())
        );
    }

    fn tail_of(text: &[u8], n: usize) -> Vec<u8> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text).unwrap();
        last_lines(&mut f, n).unwrap()
    }

    #[test]
    fn last_lines_counts_lines_not_bytes() {
        assert_eq!(tail_of(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail_of(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail_of(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail_of(b"", 5), b"");
        assert_eq!(tail_of(b"a\n", 0), b"");
        assert_eq!(tail_of(b"\n\n\n", 2), b"\n\n");
        // non-UTF-8 and hostile bytes pass through untouched
        assert_eq!(
            tail_of(b"x\n\xff\xfe $(rm) `id` %s \\ \xc3\xa9\n", 1),
            b"\xff\xfe $(rm) `id` %s \\ \xc3\xa9\n"
        );
    }

    #[test]
    fn last_lines_across_chunk_boundaries() {
        let mut text = Vec::new();
        for i in 0..40_000 {
            text.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let got = tail_of(&text, 30_000);
        let expect: Vec<u8> = (10_000..40_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        assert_eq!(got, expect);
        let long = vec![b'x'; 200_000];
        assert_eq!(tail_of(&long, 1), long);
    }

    #[test]
    fn print_last_lines_of_several_files_with_headers() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        fs::write(&a, "1\n2\n3\n").unwrap();
        fs::write(&b, "x").unwrap();
        let mut out = Vec::new();
        print_last_lines(&[a.clone(), c.clone(), b.clone()], 2, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "==> {} <==\n2\n3\n\n==> {} <==\nx\n",
                a.display(),
                b.display()
            )
        );
        let err = print_last_lines(std::slice::from_ref(&c), 2, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains(&c.display().to_string()), "{err}");
    }

    /// A writer the test can read while `follow` writes to it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
        fn wait_for(&self, needle: &str) {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !self.text().contains(needle) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "never saw {needle:?} in {:?}",
                    self.text()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn append(p: &Path, s: &str) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn tail_and_follow_loses_nothing_written_in_between() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("web.log");
        fs::write(&log, "a\nb\nc\n").unwrap();
        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (paths, mut out, stop) = (vec![log.clone()], out.clone(), stop.clone());
            std::thread::spawn(move || {
                tail_and_follow(&paths, 2, &mut out, Duration::from_millis(10), &|| {
                    stop.load(Ordering::SeqCst)
                })
            })
        };
        out.wait_for("b\nc\n");
        // appended right after the last lines showed: printed once
        append(&log, "d\n");
        out.wait_for("d\n");
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap().unwrap();
        assert_eq!(out.text(), "b\nc\nd\n");
    }

    #[test]
    fn follow_prints_growth_truncation_rotation_and_late_files() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("web.log");
        let late = d.path().join("late.log");
        fs::write(&log, "old line\n").unwrap();
        let out = Shared::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (paths, mut out, stop) =
                (vec![log.clone(), late.clone()], out.clone(), stop.clone());
            std::thread::spawn(move || {
                follow(&paths, &mut out, Duration::from_millis(10), &|| {
                    stop.load(Ordering::SeqCst)
                })
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        append(&log, "one\n");
        out.wait_for("one\n");
        // truncated and rewritten: read from the start again
        fs::write(&log, "").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        append(&log, "two\n");
        out.wait_for("two\n");
        // rotated: the old file's tail, then the new file
        let rotated = d.path().join("web.log.1");
        append(&log, "three\n");
        fs::rename(&log, &rotated).unwrap();
        fs::write(&log, "four\n").unwrap();
        out.wait_for("four\n");
        // a file that did not exist at first
        append(&late, "late one\n");
        out.wait_for("late one\n");
        stop.store(true, Ordering::SeqCst);
        handle.join().unwrap().unwrap();
        let text = out.text();
        assert!(
            !text.contains("old line"),
            "follow starts at the end: {text}"
        );
        let order = ["one\n", "two\n", "three\n", "four\n", "late one\n"];
        let pos: Vec<usize> = order.iter().map(|s| text.find(s).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(text.matches("three\n").count(), 1, "{text}");
        assert!(
            text.contains(&format!("==> {} <==\nlate one\n", late.display())),
            "{text}"
        );
    }
}
