//! What a process declares about its life beyond "how to run it", the same
//! for every backend: its **state** (units nixproc snapshots before a switch
//! changes the process and restores on rollback, with a schema label and a
//! migration) and its **readiness** (checks a switch waits for before
//! dependents start).
//!
//! These parameters are accepted by `createManagedProcess` and by every
//! backend constructor. They are split off the argument before the backend
//! generator sees it ([`split`]) and attached to the generated package
//! afterwards ([`Lifecycle::attach`]): the state declaration becomes
//! `etc/nixproc/state/<name>.json` in the package (so changing it is a change of
//! the process) and both land in the profile manifest entry.
//!
//! No secrets: database credentials are *paths* to files outside the store
//! (`credentialsFile`), never passwords.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::args::Args;
use crate::error::{Error, Result};
use crate::package::{FileSpec, PackageSpec};
use crate::value::Value;

/// The argument keys handled here, on every constructor.
pub const LIFECYCLE_KEYS: &[&str] = &["state", "schema", "rollback", "readiness"];

/// Where the state declaration is written inside a process package (one
/// file per process: packages are merged into one profile).
pub fn state_file(process_name: &str) -> String {
    format!("etc/nixproc/state/{process_name}.json")
}

/// The state of one process instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSpec {
    /// Named units; names are file-name safe (`[A-Za-z0-9_.-]`).
    pub units: BTreeMap<String, StateUnit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    #[serde(default)]
    pub rollback: RollbackPolicy,
}

/// One unit of state and how to capture it consistently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateUnit {
    #[serde(flatten)]
    pub kind: UnitKind,
    pub consistency: Consistency,
}

/// The built-in unit types. Each is captured with the engine's own tool,
/// taken from `package` (`<package>/bin/…`) or else from `PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UnitKind {
    /// A directory tree: tar; restored by unpacking into a staging
    /// directory next to it and renaming.
    #[serde(rename_all = "camelCase")]
    Directory {
        path: String,
        /// Glob patterns relative to `path` left out of snapshots (caches).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude: Vec<String>,
    },
    /// An SQLite database file: `sqlite3 DB .backup` (online), restored by
    /// replacing the file.
    #[serde(rename_all = "camelCase")]
    Sqlite {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
    },
    /// One PostgreSQL database: `pg_dump -Fc`; restored into a freshly
    /// recreated database with `pg_restore --single-transaction`.
    #[serde(rename_all = "camelCase")]
    PostgresqlDatabase {
        database: String,
        /// Host name or socket directory (`-h`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<u16>,
        /// Role to connect as (`-U`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        /// A `.pgpass` file (`PGPASSFILE`), never a password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_file: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
    },
    /// One MySQL/MariaDB database: `mysqldump --single-transaction`;
    /// restored into a dropped and recreated database.
    #[serde(rename_all = "camelCase")]
    MysqlDatabase {
        database: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        socket: Option<String>,
        /// `--defaults-extra-file`, never a password on the command line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials_file: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<String>,
    },
    /// User programs: `dump` writes the state to stdout, `restore` reads it
    /// from stdin. Run with `sh -c`.
    #[serde(rename_all = "camelCase")]
    Command { dump: String, restore: String },
}

/// How a unit is made consistent while it is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// The engine's own consistent read (pg_dump, sqlite backup, …) while
    /// the process runs.
    Online,
    /// Captured while the process is stopped.
    Stop,
}

/// A version label for the state's format and how to move it forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// Two revisions with the same label can share state: switching
    /// between them needs no restore.
    pub version: String,
    /// Shell command run after the new revision is activated (`sh -c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<String>,
}

/// What a rollback to a revision with a different schema does with state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackPolicy {
    /// Refuse until the user says `--restore-state` or `--keep-state`.
    #[default]
    Ask,
    /// Restore the snapshot of the target revision.
    Restore,
    /// Keep the current state (code-only rollback), with a warning.
    Keep,
}

/// Checks that say a started process is ready to serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// All must pass.
    pub checks: Vec<ReadinessCheck>,
    /// Seconds to wait for all checks before the start counts as failed.
    pub timeout: u64,
    /// Milliseconds between attempts.
    pub interval: u64,
}

pub const DEFAULT_READINESS_TIMEOUT: u64 = 30;
pub const DEFAULT_READINESS_INTERVAL: u64 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ReadinessCheck {
    /// A TCP connection to `host:port` succeeds.
    #[serde(rename_all = "camelCase")]
    Tcp { host: String, port: u16 },
    /// An HTTP GET of `url` (plain http) answers with `status`, or with any
    /// 2xx/3xx status when absent.
    #[serde(rename_all = "camelCase")]
    Http {
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// `sh -c command` exits 0.
    #[serde(rename_all = "camelCase")]
    Command { command: String },
    /// The PID file exists and names a live process (`path` absent: the
    /// instance's own PID file).
    #[serde(rename_all = "camelCase")]
    PidFile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// A line containing `contains` appears in the log file (`file` absent:
    /// the instance's own log file), written after the start began.
    #[serde(rename_all = "camelCase")]
    LogLine {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        contains: String,
    },
}

/// The lifecycle declarations of one process, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lifecycle {
    pub state: Option<StateSpec>,
    pub readiness: Option<Readiness>,
}

/// Splits the lifecycle keys off a constructor argument: the rest goes to
/// the backend generator. A non-attrset is returned unchanged (the
/// generator reports it).
pub fn split(v: &Value) -> Result<(Value, Lifecycle)> {
    let Value::Attrs(map) = v else {
        return Ok((v.clone(), Lifecycle::default()));
    };
    if !LIFECYCLE_KEYS.iter().any(|k| map.contains_key(*k)) {
        return Ok((v.clone(), Lifecycle::default()));
    }
    let mut rest = map.clone();
    let mut own = BTreeMap::new();
    for k in LIFECYCLE_KEYS {
        if let Some(x) = rest.remove(*k) {
            own.insert((*k).to_string(), x);
        }
    }
    let lifecycle = parse(&Value::Attrs(own))?;
    Ok((Value::Attrs(rest), lifecycle))
}

/// Runs a backend generator on `v` with the lifecycle keys handled here.
pub fn generate(
    v: &Value,
    create: impl FnOnce(&Value) -> Result<PackageSpec>,
) -> Result<PackageSpec> {
    let (rest, lifecycle) = split(v)?;
    let spec = create(&rest)?;
    Ok(lifecycle.attach(spec))
}

/// The lifecycle keys of `v` (for passing them through a translation).
pub fn keys_of(v: &Value) -> BTreeMap<String, Value> {
    v.as_attrs()
        .map(|m| {
            LIFECYCLE_KEYS
                .iter()
                .filter_map(|k| m.get(*k).map(|x| ((*k).to_string(), x.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn parse(v: &Value) -> Result<Lifecycle> {
    let a = Args::new(v, "argument")?;
    let units = match a.attrs("state")? {
        None => None,
        Some(m) => Some(parse_units(m)?),
    };
    let schema = match a.attrs("schema")? {
        None => None,
        Some(m) => Some(parse_schema(m).map_err(|e| e.within("schema"))?),
    };
    let rollback = match a.opt_str("rollback")? {
        None => RollbackPolicy::default(),
        Some(s) => match s.as_str() {
            "ask" => RollbackPolicy::Ask,
            "restore" => RollbackPolicy::Restore,
            "keep" => RollbackPolicy::Keep,
            other => {
                return Err(Error::invalid(
                    "rollback",
                    format!("{other:?} is not a rollback policy (one of: ask, restore, keep)"),
                ))
            }
        },
    };
    let readiness = match a.get("readiness") {
        None => None,
        Some(r) => Some(parse_readiness(r).map_err(|e| e.within("readiness"))?),
    };
    a.finish()?;
    let state = match units {
        Some(units) if !units.is_empty() => Some(StateSpec {
            units,
            schema,
            rollback,
        }),
        _ => {
            if schema.is_some() {
                return Err(Error::invalid(
                    "schema",
                    "a schema describes declared state: declare `state` units too",
                ));
            }
            None
        }
    };
    Ok(Lifecycle { state, readiness })
}

fn parse_units(m: &BTreeMap<String, Value>) -> Result<BTreeMap<String, StateUnit>> {
    m.iter()
        .map(|(name, v)| {
            let attr = format!("state.{name}");
            check_unit_name(&attr, name)?;
            let unit = parse_unit(v).map_err(|e| e.within(&attr))?;
            Ok((name.clone(), unit))
        })
        .collect()
}

/// Unit names become file names in snapshots (`unit-<name>.…`).
fn check_unit_name(attr: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            attr,
            format!(
                "{name:?} is not a valid state unit name (letters, digits, '_', '-', '.'; \
                 at most 64; not starting with '.')"
            ),
        ))
    }
}

fn absolute(attr: &str, p: String) -> Result<String> {
    if p.starts_with('/') && !p.split('/').any(|c| c == "..") && !p.trim_end_matches('/').is_empty()
    {
        Ok(p)
    } else {
        Err(Error::invalid(
            attr,
            format!("{p:?} must be an absolute path without '..' (and not /)"),
        ))
    }
}

fn required(a: &Args, key: &str, why: &str) -> Result<String> {
    match a.opt_str(key)? {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(Error::Missing {
            attr: key.into(),
            why: why.into(),
        }),
    }
}

fn opt_path(a: &Args, key: &str) -> Result<Option<String>> {
    a.opt_str(key)?.map(|p| absolute(key, p)).transpose()
}

fn parse_unit(v: &Value) -> Result<StateUnit> {
    let a = Args::new(v, "unit")?;
    let ty = required(
        &a,
        "type",
        "one of directory, sqlite, postgresql-database, mysql-database, command",
    )?;
    let package = || opt_path(&a, "package");
    let (kind, default_consistency) = match ty.as_str() {
        "directory" => (
            UnitKind::Directory {
                path: absolute("path", required(&a, "path", "the directory to keep")?)?,
                exclude: a.string_list("exclude")?,
            },
            Consistency::Stop,
        ),
        "sqlite" => (
            UnitKind::Sqlite {
                path: absolute("path", required(&a, "path", "the database file")?)?,
                package: package()?,
            },
            Consistency::Online,
        ),
        "postgresql-database" => (
            UnitKind::PostgresqlDatabase {
                database: required(&a, "database", "the database name")?,
                host: a.opt_str("host")?,
                port: opt_port(&a)?,
                user: a.opt_str("user")?,
                credentials_file: opt_path(&a, "credentialsFile")?,
                package: package()?,
            },
            Consistency::Online,
        ),
        "mysql-database" => (
            UnitKind::MysqlDatabase {
                database: required(&a, "database", "the database name")?,
                socket: opt_path(&a, "socket")?,
                credentials_file: opt_path(&a, "credentialsFile")?,
                package: package()?,
            },
            Consistency::Online,
        ),
        "command" => (
            UnitKind::Command {
                dump: required(&a, "dump", "a command writing the state to stdout")?,
                restore: required(&a, "restore", "a command reading the state from stdin")?,
            },
            Consistency::Online,
        ),
        other => {
            return Err(Error::invalid(
                "type",
                format!(
                    "{other:?} is not a state unit type (one of: directory, sqlite, \
                     postgresql-database, mysql-database, command)"
                ),
            ))
        }
    };
    for secret in ["password", "passwordFile"] {
        if a.get(secret).is_some() {
            return Err(Error::invalid(
                secret,
                "passwords must not enter the world-readable Nix store; use credentialsFile \
                 (a path to a file outside the store)",
            ));
        }
    }
    let consistency = match a.opt_str("consistency")?.as_deref() {
        None => default_consistency,
        Some("online") => Consistency::Online,
        Some("stop") => Consistency::Stop,
        Some(other) => {
            return Err(Error::invalid(
                "consistency",
                format!("{other:?} is not a consistency policy (online or stop)"),
            ))
        }
    };
    a.finish()?;
    Ok(StateUnit { kind, consistency })
}

fn opt_port(a: &Args) -> Result<Option<u16>> {
    match a.opt_int("port")? {
        None => Ok(None),
        Some(p) => u16::try_from(p)
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| Error::invalid("port", format!("{p} is not a TCP port"))),
    }
}

fn parse_schema(m: &BTreeMap<String, Value>) -> Result<Schema> {
    let v = Value::Attrs(m.clone());
    let a = Args::new(&v, "schema")?;
    let version = a.opt_string_like("version")?.filter(|s| !s.is_empty());
    let schema = Schema {
        version: version.ok_or_else(|| Error::Missing {
            attr: "version".into(),
            why: "a label naming the state format (equal labels share state)".into(),
        })?,
        migrate: a.opt_str("migrate")?.filter(|s| !s.is_empty()),
    };
    a.finish()?;
    Ok(schema)
}

fn parse_readiness(v: &Value) -> Result<Readiness> {
    let a = Args::new(v, "readiness")?;
    let checks = a
        .list("checks")?
        .iter()
        .enumerate()
        .map(|(i, c)| parse_check(c).map_err(|e| e.within(&format!("checks[{i}]"))))
        .collect::<Result<Vec<_>>>()?;
    if checks.is_empty() {
        return Err(Error::Missing {
            attr: "checks".into(),
            why: "at least one check (tcp, http, command, pid-file, log-line)".into(),
        });
    }
    let positive = |key: &str, default: u64| -> Result<u64> {
        match a.opt_int(key)? {
            None => Ok(default),
            Some(n) if n > 0 => Ok(n as u64),
            Some(n) => Err(Error::invalid(key, format!("{n} must be positive"))),
        }
    };
    let r = Readiness {
        checks,
        timeout: positive("timeout", DEFAULT_READINESS_TIMEOUT)?,
        interval: positive("interval", DEFAULT_READINESS_INTERVAL)?,
    };
    a.finish()?;
    Ok(r)
}

fn parse_check(v: &Value) -> Result<ReadinessCheck> {
    let a = Args::new(v, "check")?;
    let ty = required(&a, "type", "one of tcp, http, command, pid-file, log-line")?;
    let check = match ty.as_str() {
        "tcp" => ReadinessCheck::Tcp {
            host: a.str_or("host", "127.0.0.1")?,
            port: opt_port(&a)?.ok_or_else(|| Error::Missing {
                attr: "port".into(),
                why: "the TCP port to connect to".into(),
            })?,
        },
        "http" => {
            let url = required(&a, "url", "an http:// URL")?;
            if !url.starts_with("http://") {
                return Err(Error::invalid(
                    "url",
                    format!("{url:?}: only plain http:// URLs can be checked"),
                ));
            }
            let status = match a.opt_int("status")? {
                None => None,
                Some(s) if (100..=599).contains(&s) => Some(s as u16),
                Some(s) => {
                    return Err(Error::invalid(
                        "status",
                        format!("{s} is not an HTTP status"),
                    ))
                }
            };
            ReadinessCheck::Http { url, status }
        }
        "command" => ReadinessCheck::Command {
            command: required(&a, "command", "a shell command that exits 0 when ready")?,
        },
        "pid-file" => ReadinessCheck::PidFile {
            path: opt_path(&a, "path")?,
        },
        "log-line" => ReadinessCheck::LogLine {
            file: opt_path(&a, "file")?,
            contains: required(&a, "contains", "the text of the line that says ready")?,
        },
        other => {
            return Err(Error::invalid(
                "type",
                format!(
                    "{other:?} is not a readiness check (one of: tcp, http, command, pid-file, \
                     log-line)"
                ),
            ))
        }
    };
    a.finish()?;
    Ok(check)
}

impl Lifecycle {
    /// Adds the declarations to a generated package: the state file (part
    /// of the package, so of its revision) and the manifest fields.
    pub fn attach(self, spec: PackageSpec) -> PackageSpec {
        if self.state.is_none() && self.readiness.is_none() {
            return spec;
        }
        let PackageSpec {
            name,
            mut files,
            links,
            mut manifest,
            passthru,
        } = spec;
        if let Some(state) = &self.state {
            let text = serde_json::to_string_pretty(state).expect("state serializes") + "\n";
            files.push(FileSpec {
                path: state_file(&name),
                text,
                mode: 0o444,
            });
        }
        manifest.state = self.state;
        manifest.readiness = self.readiness;
        PackageSpec::new(name, files, links, manifest, passthru)
    }
}

#[cfg(test)]
mod tests;
