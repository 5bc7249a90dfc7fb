//! `command` units: the user's `dump` program writes the state to stdout
//! (`sh -c dump`); `restore` reads it back from stdin (`sh -c restore`).
//! Staging copies the stream to a scratch file, so the restore program
//! only runs once the whole snapshot was read and checked. Both run as
//! the instance's account when one is given (uid, gid, no supplementary
//! groups, `HOME`, `USER`, `LOGNAME`, working directory `/`). A non-zero
//! exit is an error with the tail of the program's stderr.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

use anyhow::{bail, Context, Result};
use nixproc_core::lifecycle::{StateUnit, UnitKind};

use super::{Adapter, StagedRestore, UnitContext};
use crate::store::RunAs;

pub struct Command {
    dump: String,
    restore: String,
}

impl Command {
    pub fn new(unit: &StateUnit) -> Self {
        match &unit.kind {
            UnitKind::Command { dump, restore } => Command {
                dump: dump.clone(),
                restore: restore.clone(),
            },
            other => panic!("command adapter for a {other:?} unit"),
        }
    }
}

/// `sh -c script`, as `run_as` when given.
pub fn shell(script: &str, run_as: Option<&RunAs>) -> Process {
    let mut cmd = Process::new("/bin/sh");
    cmd.arg("-c").arg(script);
    if let Some(r) = run_as {
        r.apply(&mut cmd);
        cmd.current_dir("/");
        if rustix::process::geteuid().is_root() {
            // SAFETY: after fork, before exec: one system call, no
            // allocation, no locks.
            unsafe {
                cmd.pre_exec(|| rustix::thread::set_thread_groups(&[]).map_err(io::Error::from));
            }
        }
    }
    cmd
}

/// The last lines of a program's stderr for an error message.
pub fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(15);
    let mut t = lines[start..].join("\n");
    if t.len() > 4000 {
        t = t[t.len() - 4000..].to_string();
    }
    if t.is_empty() {
        "(no output on stderr)".into()
    } else {
        t
    }
}

/// Reads a child's stderr on a thread (so a full pipe never blocks it).
fn collect_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<Vec<u8>> {
    let mut err = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    })
}

impl Adapter for Command {
    fn extension(&self) -> &'static str {
        "bin"
    }

    fn capture(&self, ctx: &UnitContext, out: &mut dyn Write) -> Result<()> {
        let mut child = shell(&self.dump, ctx.run_as)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the dump command of unit {}", ctx.unit))?;
        let err = collect_stderr(&mut child);
        let mut stdout = child.stdout.take().expect("stdout piped");
        let copied = copy(&mut stdout, out);
        drop(stdout);
        let status = child.wait()?;
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "the dump command of unit {} ({}) failed with {status}:\n{}",
                ctx.unit,
                self.dump,
                tail(&stderr)
            );
        }
        copied.with_context(|| {
            format!(
                "reading the output of the dump command of unit {}",
                ctx.unit
            )
        })?;
        Ok(())
    }

    fn stage(&self, ctx: &UnitContext, input: &mut dyn Read) -> Result<Box<dyn StagedRestore>> {
        let path = ctx.scratch.join(format!("{}.restore", ctx.unit));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        copy(input, &mut f).with_context(|| format!("writing {}", path.display()))?;
        Ok(Box::new(Staged {
            file: path,
            restore: self.restore.clone(),
        }))
    }
}

fn copy(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
}

struct Staged {
    file: PathBuf,
    restore: String,
}

impl StagedRestore for Staged {
    fn apply(self: Box<Self>, ctx: &UnitContext) -> Result<()> {
        let input =
            File::open(&self.file).with_context(|| format!("opening {}", self.file.display()))?;
        let mut child = shell(&self.restore, ctx.run_as)
            .stdin(Stdio::from(input))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the restore command of unit {}", ctx.unit))?;
        let err = collect_stderr(&mut child);
        let status = child.wait()?;
        let stderr = err.join().unwrap_or_default();
        if !status.success() {
            bail!(
                "the restore command of unit {} ({}) failed with {status}:\n{}",
                ctx.unit,
                self.restore,
                tail(&stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}
