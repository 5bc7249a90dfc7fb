//! `mysql-database`: one database of a MySQL or MariaDB server.
//!
//! * **capture**: `mysqldump --single-transaction --quick --routines
//!   --events --triggers --hex-blob --no-tablespaces -- <db>` (a consistent
//!   read for InnoDB tables; no `CREATE DATABASE`/`USE`, so the dump loads
//!   into whichever database it is given), streamed.
//! * **stage**: the stream goes to a file in the scratch directory; it must
//!   start with mysqldump's header and end with its `-- Dump completed`
//!   trailer (a cut-off dump is refused).
//! * **apply**: `DROP DATABASE`, `CREATE DATABASE` with the old character
//!   set and collation, then the dump is loaded with `mysql`. Dropping first
//!   means nothing of the newer database survives (Dysnomia's restore left
//!   tables created after the snapshot in place). MySQL cannot rename a
//!   database and its DDL is not transactional: a failure while loading
//!   leaves the database partly loaded (the restore's safety snapshot holds
//!   what was there).
//!
//! Credentials come only from `--defaults-extra-file` (the unit's
//! `credentialsFile`), never argv or the environment. Database names reach
//! SQL as backquoted identifiers and hex string literals (independent of
//! `sql_mode`).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nixproc_core::lifecycle::{StateUnit, UnitKind};

use super::tool::{self, Cmd, Input};
use super::{Adapter, StagedRestore, UnitContext};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Conn {
    database: String,
    socket: Option<String>,
    credentials_file: Option<String>,
    package: Option<String>,
}

pub struct MysqlDatabase {
    conn: Conn,
}

impl MysqlDatabase {
    pub fn new(unit: &StateUnit) -> Self {
        let UnitKind::MysqlDatabase {
            database,
            socket,
            credentials_file,
            package,
        } = &unit.kind
        else {
            unreachable!("mysql adapter for a {:?} unit", unit.kind)
        };
        MysqlDatabase {
            conn: Conn {
                database: database.clone(),
                socket: socket.clone(),
                credentials_file: credentials_file.clone(),
                package: package.clone(),
            },
        }
    }
}

/// A backquoted identifier.
fn ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A string literal that means the same under every `sql_mode`.
fn literal(s: &str) -> String {
    format!("CONVERT(X'{}' USING utf8mb4)", hex::encode(s.as_bytes()))
}

/// Character set and collation names are plain words; anything else from
/// the server is not put into SQL.
fn word(s: &str) -> Option<&str> {
    (!s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(s)
}

impl Conn {
    fn cmd(&self, tool: &str, program: &Path) -> Cmd {
        let mut c = Cmd::new(tool, program.to_path_buf());
        // Must be the first option (the client reads it before the rest).
        if let Some(f) = &self.credentials_file {
            c.arg(format!("--defaults-extra-file={f}"));
        }
        if let Some(s) = &self.socket {
            c.arg(format!("--socket={s}"));
        }
        c
    }

    fn dump(&self, mysqldump: &Path) -> Cmd {
        let mut c = self.cmd("mysqldump", mysqldump);
        for a in [
            "--single-transaction",
            "--quick",
            "--routines",
            "--events",
            "--triggers",
            "--hex-blob",
            "--no-tablespaces",
            "--",
        ] {
            c.arg(a);
        }
        c.arg(&self.database);
        c
    }

    /// `mysql` reading a script; batch output, no column names.
    fn script(&self, mysql: &Path, sql: String) -> Cmd {
        let mut c = self.cmd("mysql", mysql);
        c.arg("--batch").arg("--skip-column-names");
        c.stdin = Input::Text(sql);
        c
    }

    fn inspect(&self, mysql: &Path) -> Cmd {
        self.script(
            mysql,
            format!(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
                 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {};\n",
                literal(&self.database)
            ),
        )
    }

    fn recreate(&self, mysql: &Path, charset: Option<(&str, &str)>) -> Cmd {
        let db = ident(&self.database);
        let spec = match charset {
            Some((cs, coll)) => format!(" CHARACTER SET {cs} COLLATE {coll}"),
            None => String::new(),
        };
        self.script(
            mysql,
            format!("DROP DATABASE IF EXISTS {db};\nCREATE DATABASE {db}{spec};\n"),
        )
    }

    fn load(&self, mysql: &Path, file: &Path) -> Cmd {
        let mut c = self.cmd("mysql", mysql);
        c.arg("--binary-mode")
            .arg(format!("--database={}", self.database));
        c.stdin = Input::File(file.to_path_buf());
        c
    }

    /// Every command of a restore, in order (given the inspected charset).
    fn restore_commands(
        &self,
        mysql: &Path,
        charset: Option<(&str, &str)>,
        file: &Path,
    ) -> Vec<Cmd> {
        vec![self.recreate(mysql, charset), self.load(mysql, file)]
    }
}

fn parse_charset(out: &[u8]) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().next()?;
    let (cs, coll) = line.split_once('\t')?;
    Some((word(cs.trim())?.to_string(), word(coll.trim())?.to_string()))
}

/// mysqldump's first line and (with comments, the default) its last.
fn check_dump(file: &Path) -> Result<()> {
    let mut f = fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut first = String::new();
    BufReader::new(&mut f).read_line(&mut first)?;
    if !(first.starts_with("-- MySQL dump") || first.starts_with("-- MariaDB dump")) {
        bail!("it does not start with mysqldump's header");
    }
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(512)))?;
    let mut end = Vec::new();
    f.read_to_end(&mut end)?;
    let end = String::from_utf8_lossy(&end);
    let last = end
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if !last.starts_with("-- Dump completed") {
        bail!("it does not end with mysqldump's \"-- Dump completed\" line (cut off?)");
    }
    Ok(())
}

impl Adapter for MysqlDatabase {
    fn extension(&self) -> &'static str {
        "sql"
    }

    fn capture(&self, ctx: &UnitContext, out: &mut dyn Write) -> Result<()> {
        let mysqldump = tool::locate("mysqldump", self.conn.package.as_deref(), ctx)?;
        self.conn
            .dump(&mysqldump)
            .run(ctx, Some(out))
            .with_context(|| {
                format!(
                    "dumping database {:?} (state unit {} of {})",
                    self.conn.database, ctx.unit, ctx.instance
                )
            })?;
        Ok(())
    }

    fn stage(&self, ctx: &UnitContext, input: &mut dyn Read) -> Result<Box<dyn StagedRestore>> {
        let mysql = tool::locate("mysql", self.conn.package.as_deref(), ctx)?;
        let file = ctx.scratch.join(format!("unit-{}.sql", ctx.unit));
        let staged = Staged {
            conn: self.conn.clone(),
            mysql,
            file: file.clone(),
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("creating {}", file.display()))?;
        io::copy(input, &mut f).with_context(|| format!("writing {}", file.display()))?;
        f.sync_all()?;
        drop(f);
        check_dump(&file).with_context(|| {
            format!(
                "the snapshot of state unit {} of {} is not a complete mysqldump",
                ctx.unit, ctx.instance
            )
        })?;
        Ok(Box::new(staged))
    }
}

struct Staged {
    conn: Conn,
    mysql: PathBuf,
    file: PathBuf,
}

impl StagedRestore for Staged {
    fn apply(self: Box<Self>, ctx: &UnitContext) -> Result<()> {
        let what = || {
            format!(
                "restoring database {:?} (state unit {} of {})",
                self.conn.database, ctx.unit, ctx.instance
            )
        };
        let charset = parse_charset(
            &self
                .conn
                .inspect(&self.mysql)
                .run(ctx, None)
                .with_context(what)?,
        );
        let charset = charset.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        for c in self.conn.restore_commands(&self.mysql, charset, &self.file) {
            c.run(ctx, None).with_context(what)?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::adapter_for;
    use nixproc_core::lifecycle::Consistency;

    fn conn() -> Conn {
        Conn {
            database: "shop`; DROP DATABASE mysql; --".into(),
            socket: Some("/run/mysqld/mysqld.sock".into()),
            credentials_file: Some("/run/secrets/shop.cnf".into()),
            package: None,
        }
    }

    fn unit(package: Option<&str>) -> StateUnit {
        StateUnit {
            kind: UnitKind::MysqlDatabase {
                database: "shop".into(),
                socket: None,
                credentials_file: None,
                package: package.map(str::to_string),
            },
            consistency: Consistency::Online,
        }
    }

    #[test]
    fn dump_options_credentials_first_and_the_name_after_double_dash() {
        let c = conn().dump(Path::new("/m/bin/mysqldump"));
        assert_eq!(
            c.argv(),
            [
                "--defaults-extra-file=/run/secrets/shop.cnf",
                "--socket=/run/mysqld/mysqld.sock",
                "--single-transaction",
                "--quick",
                "--routines",
                "--events",
                "--triggers",
                "--hex-blob",
                "--no-tablespaces",
                "--",
                "shop`; DROP DATABASE mysql; --",
            ]
        );
        assert!(c.env.is_empty(), "no password in the environment");
    }

    #[test]
    fn restore_drops_recreates_and_loads_in_that_order() {
        let cmds = conn().restore_commands(
            Path::new("/m/bin/mysql"),
            Some(("utf8mb4", "utf8mb4_general_ci")),
            Path::new("/s/unit-db.sql"),
        );
        assert_eq!(cmds.len(), 2);
        let Input::Text(sql) = &cmds[0].stdin else {
            panic!("recreate reads a script")
        };
        assert_eq!(
            sql,
            "DROP DATABASE IF EXISTS `shop``; DROP DATABASE mysql; --`;\n\
             CREATE DATABASE `shop``; DROP DATABASE mysql; --` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;\n"
        );
        assert_eq!(
            cmds[1].argv(),
            [
                "--defaults-extra-file=/run/secrets/shop.cnf",
                "--socket=/run/mysqld/mysqld.sock",
                "--binary-mode",
                "--database=shop`; DROP DATABASE mysql; --",
            ]
        );
        assert_eq!(cmds[1].stdin, Input::File("/s/unit-db.sql".into()));
    }

    #[test]
    fn names_in_string_position_are_hex_literals() {
        let c = conn().inspect(Path::new("/m/bin/mysql"));
        let Input::Text(sql) = &c.stdin else {
            panic!("inspect reads a script")
        };
        assert!(!sql.contains("shop"), "{sql}");
        assert!(sql.contains(&hex::encode("shop`; DROP DATABASE mysql; --")));
    }

    #[test]
    fn only_plain_charset_names_are_used() {
        assert_eq!(
            parse_charset(b"utf8mb4\tutf8mb4_bin\n"),
            Some(("utf8mb4".into(), "utf8mb4_bin".into()))
        );
        assert_eq!(parse_charset(b"utf8; DROP\tx\n"), None);
        assert_eq!(parse_charset(b""), None);
        let c = conn().recreate(Path::new("/m"), None);
        let Input::Text(sql) = &c.stdin else {
            panic!("recreate reads a script")
        };
        assert!(!sql.contains("CHARACTER SET"));
    }

    #[test]
    fn cut_off_or_foreign_dumps_are_refused_at_stage() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.sql");
        fs::write(
            &ok,
            "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB\n--\nCREATE TABLE t (a int);\n\
             -- Dump completed on 2026-05-12 10:15:00\n",
        )
        .unwrap();
        check_dump(&ok).unwrap();
        let cut = dir.path().join("cut.sql");
        fs::write(
            &cut,
            "-- MySQL dump 10.13\nCREATE TABLE t (a int);\nINSERT INTO t VAL",
        )
        .unwrap();
        let e = check_dump(&cut).unwrap_err().to_string();
        assert!(e.contains("Dump completed"), "{e}");
        let foreign = dir.path().join("x.sql");
        fs::write(&foreign, "SELECT 1;\n-- Dump completed\n").unwrap();
        assert!(check_dump(&foreign)
            .unwrap_err()
            .to_string()
            .contains("header"));
    }

    #[test]
    fn a_missing_tool_names_the_unit_and_the_package_option() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = UnitContext {
            instance: "shop",
            unit: "db",
            run_as: None,
            scratch: dir.path(),
        };
        let pkg = dir.path().join("mariadb");
        let a = adapter_for(&unit(Some(pkg.to_str().unwrap())));
        let e = a.capture(&ctx, &mut Vec::new()).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "mysqldump not found (looked in {}/bin, the `package` of state unit db of shop)",
                pkg.display()
            )
        );
        assert_eq!(a.extension(), "sql");
    }
}
