//! `postgresql-database`: one database of a PostgreSQL cluster.
//!
//! * **capture**: `pg_dump --format=custom --compress=0` (the snapshot is
//!   zstd-compressed afterwards; gzip inside would only cost time and
//!   ratio), streamed. Owners and privileges are kept: a restore as the
//!   same role (the database owner, or a superuser) reproduces them.
//! * **stage**: the stream goes to a file in the scratch directory and
//!   `pg_restore --list` must read its table of contents.
//! * **apply**: never drop-then-load. The dump is restored into a *new*
//!   database (same owner, encoding and locale as the live one) with
//!   `pg_restore --single-transaction --exit-on-error`; only when that
//!   succeeded are the other sessions of the live database terminated and
//!   the two databases swapped by `ALTER DATABASE … RENAME` in one
//!   transaction; then the old one is dropped. A dump that does not load
//!   leaves the live database untouched, and after the swap nothing of the
//!   newer database survives (tables created after the snapshot are gone —
//!   the pitfall of Dysnomia's MySQL restore).
//!
//! All tools run as the unit's account (`run_as`, for peer
//! authentication); `-h/-p/-U` come from the unit and `PGPASSFILE` from its
//! `credentialsFile`: passwords never appear in argv or the environment.
//! SQL gets names only through psql variables (`:'db'`, `:"db"`), and
//! connection strings quote them: database names are never spliced into
//! SQL or option syntax.
//!
//! Not carried over: settings and grants on the database object itself
//! (`ALTER DATABASE … SET`, `GRANT … ON DATABASE`), which `pg_dump` only
//! emits with `--create`; roles (cluster-wide, `pg_dumpall --globals-only`).

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nixproc_core::lifecycle::{StateUnit, UnitKind};

use super::tool::{self, Cmd, Input};
use super::{Adapter, StagedRestore, UnitContext};

/// The unit's connection parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conn {
    database: String,
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    credentials_file: Option<String>,
    package: Option<String>,
}

pub struct PostgresqlDatabase {
    conn: Conn,
}

impl PostgresqlDatabase {
    pub fn new(unit: &StateUnit) -> Self {
        let UnitKind::PostgresqlDatabase {
            database,
            host,
            port,
            user,
            credentials_file,
            package,
        } = &unit.kind
        else {
            unreachable!("postgresql adapter for a {:?} unit", unit.kind)
        };
        PostgresqlDatabase {
            conn: Conn {
                database: database.clone(),
                host: host.clone(),
                port: *port,
                user: user.clone(),
                credentials_file: credentials_file.clone(),
                package: package.clone(),
            },
        }
    }
}

/// A libpq connection-string value: single-quoted, `\` and `'` escaped.
fn conninfo_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Which tool paths the commands use (tests pass fixed ones).
struct Tools {
    pg_dump: PathBuf,
    pg_restore: PathBuf,
    psql: PathBuf,
}

impl Conn {
    fn tools(&self, ctx: &UnitContext, names: &[&str]) -> Result<Vec<PathBuf>> {
        names
            .iter()
            .map(|n| tool::locate(n, self.package.as_deref(), ctx))
            .collect()
    }

    /// `tool` connected to database `db`.
    fn cmd(&self, tool: &str, program: &Path, db: &str) -> Cmd {
        let mut c = Cmd::new(tool, program.to_path_buf());
        c.arg(format!("--dbname=dbname={}", conninfo_value(db)));
        if let Some(h) = &self.host {
            c.arg(format!("--host={h}"));
        }
        if let Some(p) = self.port {
            c.arg(format!("--port={p}"));
        }
        if let Some(u) = &self.user {
            c.arg(format!("--username={u}"));
        }
        // Never prompt: a missing password is an error, not a hang.
        c.arg("--no-password");
        if let Some(f) = &self.credentials_file {
            c.env.push(("PGPASSFILE".into(), f.into()));
        }
        c.env.push(("PGAPPNAME".into(), "nixproc-state".into()));
        c
    }

    fn dump(&self, t: &Tools) -> Cmd {
        let mut c = self.cmd("pg_dump", &t.pg_dump, &self.database);
        c.arg("--format=custom").arg("--compress=0");
        c
    }

    fn list(&self, t: &Tools, file: &Path) -> Cmd {
        let mut c = Cmd::new("pg_restore", t.pg_restore.clone());
        c.arg("--list");
        c.stdin = Input::File(file.to_path_buf());
        c
    }

    /// `psql` on the maintenance database with a script; `vars` become
    /// psql variables (quoted by psql at `:'v'` / `:"v"`).
    fn script(&self, t: &Tools, vars: &[(&str, &str)], sql: &str) -> Cmd {
        let mut c = self.cmd("psql", &t.psql, "postgres");
        c.arg("--no-psqlrc")
            .arg("--quiet")
            .arg("--no-align")
            .arg("--tuples-only")
            .arg("--field-separator=\x1f")
            .arg("--set=ON_ERROR_STOP=1");
        for (k, v) in vars {
            c.arg(format!("--set={k}={v}"));
        }
        c.stdin = Input::Text(sql.to_string());
        c
    }

    /// Owner, encoding, collation and ctype of the live database (no
    /// output when it does not exist).
    fn inspect(&self, t: &Tools) -> Cmd {
        self.script(
            t,
            &[("db", &self.database)],
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype \
             FROM pg_database WHERE datname = :'db';\n",
        )
    }

    fn create(&self, t: &Tools, new: &str, like: Option<&Existing>) -> Cmd {
        match like {
            Some(e) => self.script(
                t,
                &[
                    ("new", new),
                    ("owner", &e.owner),
                    ("enc", &e.encoding),
                    ("coll", &e.collate),
                    ("ctype", &e.ctype),
                ],
                "CREATE DATABASE :\"new\" OWNER :\"owner\" TEMPLATE template0 ENCODING :'enc' \
                 LC_COLLATE :'coll' LC_CTYPE :'ctype';\n",
            ),
            None => self.script(
                t,
                &[("new", new)],
                "CREATE DATABASE :\"new\" TEMPLATE template0;\n",
            ),
        }
    }

    fn restore_into(&self, t: &Tools, new: &str, file: &Path) -> Cmd {
        let mut c = self.cmd("pg_restore", &t.pg_restore, new);
        c.arg("--single-transaction").arg("--exit-on-error");
        c.stdin = Input::File(file.to_path_buf());
        c
    }

    /// Ends the other sessions of the live database and swaps the new one
    /// in, in one transaction.
    fn swap(&self, t: &Tools, new: &str, old: Option<&str>) -> Cmd {
        match old {
            Some(old) => self.script(
                t,
                &[("db", &self.database), ("new", new), ("old", old)],
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = :'db' AND pid <> pg_backend_pid();\n\
                 BEGIN;\n\
                 ALTER DATABASE :\"db\" RENAME TO :\"old\";\n\
                 ALTER DATABASE :\"new\" RENAME TO :\"db\";\n\
                 COMMIT;\n",
            ),
            None => self.script(
                t,
                &[("db", &self.database), ("new", new)],
                "ALTER DATABASE :\"new\" RENAME TO :\"db\";\n",
            ),
        }
    }

    fn drop_db(&self, t: &Tools, name: &str) -> Cmd {
        self.script(t, &[("gone", name)], "DROP DATABASE IF EXISTS :\"gone\";\n")
    }
}

/// What the new database copies from the live one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Existing {
    owner: String,
    encoding: String,
    collate: String,
    ctype: String,
}

fn parse_existing(out: &[u8]) -> Result<Option<Existing>> {
    let text = String::from_utf8_lossy(out);
    let line = text.trim_end_matches('\n');
    if line.trim().is_empty() {
        return Ok(None);
    }
    let f: Vec<&str> = line.split('\x1f').collect();
    let [owner, encoding, collate, ctype] = f[..] else {
        bail!("unexpected answer from psql about the database: {line:?}");
    };
    Ok(Some(Existing {
        owner: owner.into(),
        encoding: encoding.into(),
        collate: collate.into(),
        ctype: ctype.into(),
    }))
}

impl Adapter for PostgresqlDatabase {
    fn extension(&self) -> &'static str {
        "pgdump"
    }

    fn capture(&self, ctx: &UnitContext, out: &mut dyn Write) -> Result<()> {
        let t = self.conn.tools(ctx, &["pg_dump"])?;
        let tools = Tools {
            pg_dump: t[0].clone(),
            pg_restore: PathBuf::new(),
            psql: PathBuf::new(),
        };
        self.conn
            .dump(&tools)
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
        let t = self.conn.tools(ctx, &["pg_dump", "pg_restore", "psql"])?;
        let tools = Tools {
            pg_dump: t[0].clone(),
            pg_restore: t[1].clone(),
            psql: t[2].clone(),
        };
        let file = ctx.scratch.join(format!("unit-{}.pgdump", ctx.unit));
        let staged = Staged {
            conn: self.conn.clone(),
            tools,
            file: file.clone(),
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .with_context(|| format!("creating {}", file.display()))?;
        let n = io::copy(input, &mut f).with_context(|| format!("writing {}", file.display()))?;
        f.sync_all()?;
        drop(f);
        if n == 0 {
            bail!(
                "the snapshot of state unit {} of {} is empty, not a pg_dump archive",
                ctx.unit,
                ctx.instance
            );
        }
        staged
            .conn
            .list(&staged.tools, &file)
            .run(ctx, None)
            .with_context(|| {
                format!(
                    "the snapshot of state unit {} of {} is not a readable pg_dump archive",
                    ctx.unit, ctx.instance
                )
            })?;
        Ok(Box::new(staged))
    }
}

/// A dump file whose table of contents reads.
struct Staged {
    conn: Conn,
    tools: Tools,
    file: PathBuf,
}

impl StagedRestore for Staged {
    fn apply(self: Box<Self>, ctx: &UnitContext) -> Result<()> {
        let (c, t) = (&self.conn, &self.tools);
        let what = || {
            format!(
                "restoring database {:?} (state unit {} of {})",
                c.database, ctx.unit, ctx.instance
            )
        };
        let existing = parse_existing(&c.inspect(t).run(ctx, None).with_context(what)?)?;
        let new = format!("nixproc_new_{}", tool::unique().replace('-', "_"));
        c.create(t, &new, existing.as_ref())
            .run(ctx, None)
            .with_context(what)?;
        let loaded = c.restore_into(t, &new, &self.file).run(ctx, None);
        let old = format!("nixproc_old_{}", tool::unique().replace('-', "_"));
        let swapped = loaded.and_then(|_| {
            c.swap(t, &new, existing.as_ref().map(|_| old.as_str()))
                .run(ctx, None)
        });
        if let Err(e) = swapped {
            // The live database was not touched; the half-made one goes.
            let _ = c.drop_db(t, &new).run(ctx, None);
            return Err(e).with_context(|| {
                format!(
                    "{}: the live database is unchanged (the snapshot did not load into a new \
                     database, or it could not be swapped in)",
                    what()
                )
            });
        }
        if existing.is_some() {
            if let Err(e) = c.drop_db(t, &old).run(ctx, None) {
                eprintln!(
                    "nixproc: warning: database {:?} was restored, but its previous contents \
                     remain as database {old:?}: {e:#}",
                    c.database
                );
            }
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

    fn conn() -> Conn {
        Conn {
            database: "app's \"db\"".into(),
            host: Some("/run/postgresql".into()),
            port: Some(5433),
            user: Some("app".into()),
            credentials_file: Some("/run/secrets/app.pgpass".into()),
            package: None,
        }
    }

    fn tools() -> Tools {
        Tools {
            pg_dump: "/pg/bin/pg_dump".into(),
            pg_restore: "/pg/bin/pg_restore".into(),
            psql: "/pg/bin/psql".into(),
        }
    }

    #[test]
    fn connection_string_values_are_quoted() {
        assert_eq!(conninfo_value("app"), "'app'");
        assert_eq!(conninfo_value(r"a'b\c"), r"'a\'b\\c'");
        assert_eq!(conninfo_value("host=evil"), "'host=evil'");
    }

    #[test]
    fn dump_is_uncompressed_custom_format_with_the_units_connection() {
        let c = conn().dump(&tools());
        assert_eq!(c.program, Path::new("/pg/bin/pg_dump"));
        assert_eq!(
            c.argv(),
            [
                r#"--dbname=dbname='app\'s "db"'"#,
                "--host=/run/postgresql",
                "--port=5433",
                "--username=app",
                "--no-password",
                "--format=custom",
                "--compress=0",
            ]
        );
    }

    #[test]
    fn the_password_file_is_passed_by_path_only() {
        let c = conn().dump(&tools());
        assert!(c
            .env
            .contains(&("PGPASSFILE".into(), "/run/secrets/app.pgpass".into())));
        assert!(c.env.iter().all(|(k, _)| k != "PGPASSWORD"));
        assert!(c.argv().iter().all(|a| !a.contains("password=")));
    }

    #[test]
    fn names_reach_sql_only_as_psql_variables() {
        let c = conn().swap(&tools(), "nixproc_new_1", Some("nixproc_old_1"));
        let Input::Text(sql) = &c.stdin else {
            panic!("swap reads a script")
        };
        assert!(!sql.contains("app's"), "{sql}");
        assert!(sql.contains("ALTER DATABASE :\"db\" RENAME TO :\"old\""));
        assert!(c.argv().contains(&"--set=db=app's \"db\"".to_string()));
        assert!(c.argv().contains(&"--set=ON_ERROR_STOP=1".to_string()));
        // The maintenance database, not the one being replaced.
        assert_eq!(c.argv()[0], "--dbname=dbname='postgres'");
    }

    #[test]
    fn the_swap_is_one_transaction_after_terminating_sessions() {
        let c = conn().swap(&tools(), "n", Some("o"));
        let Input::Text(sql) = &c.stdin else {
            panic!("swap reads a script")
        };
        let term = sql.find("pg_terminate_backend").unwrap();
        let begin = sql.find("BEGIN").unwrap();
        let commit = sql.find("COMMIT").unwrap();
        assert!(term < begin && begin < commit);
        let first = conn().swap(&tools(), "n", None);
        let Input::Text(sql) = &first.stdin else {
            panic!("swap reads a script")
        };
        assert!(!sql.contains("pg_terminate_backend"));
    }

    #[test]
    fn restore_loads_into_the_new_database_in_one_transaction() {
        let c = conn().restore_into(&tools(), "nixproc_new_1", Path::new("/s/u.pgdump"));
        assert_eq!(c.argv()[0], "--dbname=dbname='nixproc_new_1'");
        assert!(c.argv().contains(&"--single-transaction".to_string()));
        assert!(c.argv().contains(&"--exit-on-error".to_string()));
        assert_eq!(c.stdin, Input::File("/s/u.pgdump".into()));
    }

    #[test]
    fn the_new_database_copies_owner_encoding_and_locale() {
        let e = Existing {
            owner: "app".into(),
            encoding: "UTF8".into(),
            collate: "C.UTF-8".into(),
            ctype: "C.UTF-8".into(),
        };
        let c = conn().create(&tools(), "n", Some(&e));
        for v in [
            "--set=owner=app",
            "--set=enc=UTF8",
            "--set=coll=C.UTF-8",
            "--set=ctype=C.UTF-8",
        ] {
            assert!(c.argv().contains(&v.to_string()), "{v}");
        }
    }

    #[test]
    fn inspect_answers_parse() {
        assert_eq!(parse_existing(b"").unwrap(), None);
        assert_eq!(
            parse_existing(b"app\x1fUTF8\x1fC\x1fC\n").unwrap(),
            Some(Existing {
                owner: "app".into(),
                encoding: "UTF8".into(),
                collate: "C".into(),
                ctype: "C".into()
            })
        );
        assert!(parse_existing(b"what\n").is_err());
    }
}
