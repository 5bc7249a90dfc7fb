//! Running the engines' own tools: where they are found, as which account,
//! and how their failures read. Shared by the database adapters.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context, Result};

use super::UnitContext;

/// How much of a failing tool's stderr an error shows.
const STDERR_TAIL: usize = 2000;

/// The engine tool `name`: `<package>/bin/<name>` when the unit names a
/// package (only there: a tool from elsewhere may not match the
/// engine's version), else the first on `PATH`.
pub fn locate(name: &str, package: Option<&str>, ctx: &UnitContext) -> Result<PathBuf> {
    if let Some(pkg) = package {
        let p = Path::new(pkg).join("bin").join(name);
        if is_executable(&p) {
            return Ok(p);
        }
        bail!(
            "{name} not found (looked in {pkg}/bin, the `package` of state unit {} of {})",
            ctx.unit,
            ctx.instance
        );
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    });
    found.ok_or_else(|| {
        anyhow!(
            "{name} not found (looked in <package>/bin, PATH): set `package` on state unit \
             {} of {}",
            ctx.unit,
            ctx.instance
        )
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A name no other process or call uses.
pub fn unique() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{:08x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn chown_if_root(p: &Path, uid: u32, gid: u32) -> Result<()> {
    if is_root() {
        rustix::fs::chown(
            p,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .with_context(|| format!("changing the owner of {}", p.display()))?;
    }
    Ok(())
}

/// Makes `p` (created by us) belong to the account the tools run as.
pub fn give_to_run_as(p: &Path, ctx: &UnitContext) -> Result<()> {
    match ctx.run_as {
        Some(r) => chown_if_root(p, r.uid, r.gid),
        None => Ok(()),
    }
}

/// What a tool reads on stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Null,
    /// A file we opened (so the tool's account needs no access to it).
    File(PathBuf),
    /// A script (SQL), written to the tool's stdin.
    Text(String),
}

/// One tool invocation; built apart from running it so tests can
/// check command lines without the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// For messages: `pg_dump`.
    pub tool: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Added to the environment (never secrets: file paths only).
    pub env: Vec<(String, OsString)>,
    pub stdin: Input,
    /// Default: `/` (the tool's account may not enter ours).
    pub cwd: Option<PathBuf>,
}

impl Cmd {
    pub fn new(tool: &str, program: PathBuf) -> Self {
        Cmd {
            tool: tool.to_string(),
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: Input::Null,
            cwd: None,
        }
    }

    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    /// The arguments as strings (tests).
    #[cfg(test)]
    pub fn argv(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// Runs the tool as `ctx.run_as` (when given); its stdout goes to
    /// `out`, or is returned when `out` is `None`. A non-zero exit is
    /// an error naming the tool, the status and the end of stderr.
    pub fn run(&self, ctx: &UnitContext, out: Option<&mut dyn Write>) -> Result<Vec<u8>> {
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .current_dir(self.cwd.as_deref().unwrap_or(Path::new("/")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if let Some(r) = ctx.run_as {
            r.apply(&mut c);
        }
        let mut text = None;
        match &self.stdin {
            Input::Null => {
                c.stdin(Stdio::null());
            }
            Input::File(p) => {
                let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
                c.stdin(f);
            }
            Input::Text(t) => {
                c.stdin(Stdio::piped());
                text = Some(t.clone());
            }
        }
        let mut child = c
            .spawn()
            .with_context(|| format!("starting {} ({})", self.tool, self.program.display()))?;
        let feeder = match (text, child.stdin.take()) {
            (Some(t), Some(mut stdin)) => Some(std::thread::spawn(move || {
                let _ = stdin.write_all(t.as_bytes());
            })),
            _ => None,
        };
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let errs = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut collected = Vec::new();
        let copied = match out {
            Some(w) => io::copy(&mut stdout, w).map(|_| ()),
            None => stdout.read_to_end(&mut collected).map(|_| ()),
        };
        if copied.is_err() {
            let _ = child.kill();
        }
        drop(stdout);
        let status = child
            .wait()
            .with_context(|| format!("waiting for {}", self.tool))?;
        if let Some(f) = feeder {
            let _ = f.join();
        }
        let err = errs.join().unwrap_or_default();
        copied.with_context(|| format!("streaming the output of {}", self.tool))?;
        if !status.success() {
            let err = String::from_utf8_lossy(&err);
            let status = match status.code() {
                Some(c) => format!("exit status {c}"),
                None => format!("{status}"),
            };
            bail!(
                "{} failed ({status}){}",
                self.tool,
                match err.trim() {
                    "" => String::new(),
                    e => format!(": {}", tail(e, STDERR_TAIL)),
                }
            );
        }
        Ok(collected)
    }
}

/// The last `max` bytes of `s` (at a character boundary), marked when
/// cut.
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_at_a_char_boundary() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("abcdef", 3), "…def");
        // "€" is three bytes: cutting inside it moves to the next character.
        assert_eq!(tail("aé€x", 3), "…x");
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique(), unique());
    }
}
