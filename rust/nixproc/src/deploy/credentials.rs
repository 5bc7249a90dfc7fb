//! Users and groups at deploy time (reference §2.5, §5.6): the accounts a
//! profile declares in `dysnomia-support/{groups,users}/<name>` exist
//! before any of its processes starts, and the ones nixproc created are
//! removed once no deployed process declares them any more.
//!
//! Differences to the original's `dysnomia-addusers`/`-delusers` diffing:
//!
//! * only accounts nixproc itself created are ever deleted. They are
//!   recorded in `<lib-dir>/nixproc/accounts.json`; an account that existed
//!   before (a model declaring `www-data`, say) is used, never removed;
//! * every account of the new profile is ensured on each switch, not only
//!   the ones new relative to the old profile, so an account deleted by
//!   hand comes back;
//! * accounts created for a switch that then fails are removed again with
//!   the rollback, so nothing is left half-done;
//! * under `--force-disable-user-change` no account is touched; only the
//!   home directories of `createHomeDir` users are made (as the
//!   `createHomeDirOnly` entries of such a profile say).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::runner::{Cmd, Runner};

/// `key → value` of one `dysnomia-support` file.
pub type Properties = BTreeMap<String, String>;

/// The accounts one profile declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub groups: BTreeMap<String, Properties>,
    pub users: BTreeMap<String, Properties>,
}

impl Declared {
    /// Reads `<profile>/dysnomia-support`; a profile without it declares
    /// nothing.
    pub fn read(profile: &Path) -> Result<Declared> {
        let base = profile.join("dysnomia-support");
        Ok(Declared {
            groups: read_dir_entries(&base.join("groups"))?,
            users: read_dir_entries(&base.join("users"))?,
        })
    }
}

fn read_dir_entries(dir: &Path) -> Result<BTreeMap<String, Properties>> {
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| anyhow!("{}: not a UTF-8 account name", path.display()))?
            .to_string();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let props = parse_properties(&text).with_context(|| format!("in {}", path.display()))?;
        out.insert(name, props);
    }
    Ok(out)
}

/// Parses the `key=<shell word>` lines the generators write
/// (`nixproc_core::credentials`): values are plain or single-quoted words,
/// with `'\''` for a quote.
pub fn parse_properties(text: &str) -> Result<Properties> {
    let mut props = Properties::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, raw) = line
            .split_once('=')
            .ok_or_else(|| anyhow!("line {}: expected key=value", i + 1))?;
        let value = unquote(raw).with_context(|| format!("line {}: value of {key}", i + 1))?;
        props.insert(key.to_string(), value);
    }
    Ok(props)
}

fn unquote(word: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => bail!("unterminated single quote"),
                }
            },
            '\\' => out.push(chars.next().ok_or_else(|| anyhow!("trailing backslash"))?),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The accounts nixproc created and therefore may remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub groups: BTreeSet<String>,
    pub users: BTreeSet<String>,
}

impl Created {
    fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.users.is_empty()
    }
}

/// What one switch step did, for the progress output and for undoing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChanges {
    pub created: Created,
    pub removed: Created,
    /// Home directories made for `createHomeDirOnly` users.
    pub homes: Vec<PathBuf>,
}

/// The switch's view of account management.
pub trait AccountSteps {
    /// Makes every account `new_profile` declares exist (before starts).
    fn ensure(&self, new_profile: &Path) -> Result<AccountChanges>;

    /// Removes the accounts nixproc created that `new_profile` no longer
    /// declares (after the stops).
    fn remove_obsolete(&self, new_profile: &Path) -> Result<AccountChanges>;

    /// Undoes [`AccountSteps::ensure`] after a failed switch.
    fn undo(&self, changes: &AccountChanges) -> Result<()>;
}

/// Creates and removes accounts with shadow's `groupadd`/`useradd`/
/// `userdel`/`groupdel`, looking them up with `getent`.
pub struct AccountManager<R> {
    runner: R,
    record: PathBuf,
    force_disable_user_change: bool,
}

impl<R: Runner> AccountManager<R> {
    /// `lib_dir` holds the record of created accounts
    /// (`<lib_dir>/nixproc/accounts.json`).
    pub fn new(runner: R, lib_dir: &Path, force_disable_user_change: bool) -> Self {
        AccountManager {
            runner,
            record: lib_dir.join("nixproc/accounts.json"),
            force_disable_user_change,
        }
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn load(&self) -> Result<Created> {
        match fs::read(&self.record) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", self.record.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Created::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.record.display())),
        }
    }

    fn save(&self, created: &Created) -> Result<()> {
        let dir = self.record.parent().expect("record has a parent");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = self.record.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(created)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &self.record).with_context(|| format!("writing {}", self.record.display()))
    }

    fn exists(&self, database: &str, name: &str) -> Result<bool> {
        let out = self
            .runner
            .run(&Cmd::new("getent").arg(database).arg(name))?;
        match out.code() {
            Some(0) => Ok(true),
            Some(2) => Ok(false),
            _ => bail!(
                "getent {database} {name} failed ({}): {}",
                out.exit,
                out.tail()
            ),
        }
    }

    fn add_group(&self, name: &str, props: &Properties) -> Result<()> {
        let mut cmd = Cmd::new("groupadd");
        if let Some(gid) = props.get("gid").filter(|g| !g.is_empty()) {
            cmd = cmd.arg("-g").arg(gid);
        }
        self.runner
            .run_checked(&cmd.arg("--").arg(name))
            .with_context(|| format!("creating group {name}"))?;
        Ok(())
    }

    fn add_user(&self, name: &str, props: &Properties) -> Result<()> {
        let get = |k: &str| props.get(k).filter(|v| !v.is_empty());
        let mut cmd = Cmd::new("useradd");
        for (key, flag) in [
            ("uid", "-u"),
            ("group", "-g"),
            ("description", "-c"),
            ("shell", "-s"),
            ("password", "-p"),
        ] {
            if let Some(v) = get(key) {
                cmd = cmd.arg(flag).arg(v);
            }
        }
        if get("group").is_none() {
            // Without a declared group, useradd would make one of the
            // user's name that nixproc does not know about.
            cmd = cmd.arg("-N");
        }
        cmd = cmd
            .arg("-d")
            .arg(get("homeDir").map(String::as_str).unwrap_or("/dev/null"));
        cmd = if props.get("createHomeDir").is_some_and(|v| v == "1") {
            cmd.arg("-m")
        } else {
            cmd.arg("-M")
        };
        self.runner
            .run_checked(&cmd.arg("--").arg(name))
            .with_context(|| format!("creating user {name}"))?;
        Ok(())
    }

    fn delete(&self, program: &str, name: &str) -> Result<()> {
        self.runner
            .run_checked(&Cmd::new(program).arg("--").arg(name))
            .with_context(|| format!("{program} {name}"))?;
        Ok(())
    }

    fn make_home(home: &str, changes: &mut AccountChanges) -> Result<()> {
        let home = PathBuf::from(home);
        if !home.is_dir() {
            fs::create_dir_all(&home)
                .with_context(|| format!("creating home directory {}", home.display()))?;
            changes.homes.push(home);
        }
        Ok(())
    }
}

fn home_only(props: &Properties) -> bool {
    props.get("createHomeDirOnly").is_some_and(|v| v == "1")
}

impl<R: Runner> AccountSteps for AccountManager<R> {
    fn ensure(&self, new_profile: &Path) -> Result<AccountChanges> {
        let declared = Declared::read(new_profile)?;
        let mut changes = AccountChanges::default();
        for (user, props) in &declared.users {
            let wants_home = props.get("createHomeDir").is_some_and(|v| v == "1");
            if home_only(props) || (self.force_disable_user_change && wants_home) {
                if let Some(home) = props.get("homeDir").filter(|h| !h.is_empty()) {
                    Self::make_home(home, &mut changes)
                        .with_context(|| format!("for user {user}"))?;
                }
            }
        }
        if self.force_disable_user_change {
            return Ok(changes);
        }
        let mut record = self.load()?;
        let result: Result<()> = (|| {
            for (group, props) in &declared.groups {
                if !self.exists("group", group)? {
                    self.add_group(group, props)?;
                    changes.created.groups.insert(group.clone());
                }
            }
            for (user, props) in declared.users.iter().filter(|(_, p)| !home_only(p)) {
                if !self.exists("passwd", user)? {
                    self.add_user(user, props)?;
                    changes.created.users.insert(user.clone());
                }
            }
            Ok(())
        })();
        record.groups.extend(changes.created.groups.iter().cloned());
        record.users.extend(changes.created.users.iter().cloned());
        if !changes.created.is_empty() {
            self.save(&record)?;
        }
        match result {
            Ok(()) => Ok(changes),
            Err(e) => {
                // Leave nothing half-created behind.
                if let Err(u) = self.undo(&changes) {
                    return Err(e.context(format!("and undoing failed too: {u:#}")));
                }
                Err(e)
            }
        }
    }

    fn remove_obsolete(&self, new_profile: &Path) -> Result<AccountChanges> {
        let mut changes = AccountChanges::default();
        if self.force_disable_user_change {
            return Ok(changes);
        }
        let declared = Declared::read(new_profile)?;
        let mut record = self.load()?;
        let users: Vec<String> = record
            .users
            .iter()
            .filter(|u| declared.users.get(*u).is_none_or(home_only))
            .cloned()
            .collect();
        let groups: Vec<String> = record
            .groups
            .iter()
            .filter(|g| !declared.groups.contains_key(*g))
            .cloned()
            .collect();
        let mut outcome = Ok(());
        // Users first: a group cannot go while it is a user's primary group.
        for (db, program, names) in [("passwd", "userdel", users), ("group", "groupdel", groups)] {
            for name in names {
                let step: Result<()> = (|| {
                    if self.exists(db, &name)? {
                        self.delete(program, &name)?;
                    }
                    Ok(())
                })();
                match step {
                    Ok(()) => {
                        let (set, removed) = if db == "passwd" {
                            (&mut record.users, &mut changes.removed.users)
                        } else {
                            (&mut record.groups, &mut changes.removed.groups)
                        };
                        set.remove(&name);
                        removed.insert(name);
                    }
                    Err(e) => {
                        if outcome.is_ok() {
                            outcome = Err(e);
                        }
                    }
                }
            }
        }
        if !changes.removed.is_empty() {
            self.save(&record)?;
        }
        outcome.map(|()| changes)
    }

    fn undo(&self, changes: &AccountChanges) -> Result<()> {
        if changes.created.is_empty() {
            return Ok(());
        }
        let mut record = self.load()?;
        let mut first_error = None;
        for (program, names, set) in [
            ("userdel", &changes.created.users, &mut record.users),
            ("groupdel", &changes.created.groups, &mut record.groups),
        ] {
            for name in names {
                match self.delete(program, name) {
                    Ok(()) => {
                        set.remove(name);
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        self.save(&record)?;
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::runner::{CmdOutput, RecordingRunner};

    struct Env {
        dir: tempfile::TempDir,
    }

    impl Env {
        fn new() -> Self {
            Env {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        /// A profile with the given `groups/<name>` and `users/<name>` files.
        fn profile(&self, name: &str, groups: &[(&str, &str)], users: &[(&str, &str)]) -> PathBuf {
            let p = self.dir.path().join(name);
            for (kind, entries) in [("groups", groups), ("users", users)] {
                let d = p.join("dysnomia-support").join(kind);
                fs::create_dir_all(&d).unwrap();
                for (n, text) in entries {
                    fs::write(d.join(n), text).unwrap();
                }
            }
            p
        }

        fn manager(&self, runner: RecordingRunner, fduc: bool) -> AccountManager<RecordingRunner> {
            AccountManager::new(runner, &self.dir.path().join("lib"), fduc)
        }

        fn record(&self) -> Created {
            let p = self.dir.path().join("lib/nixproc/accounts.json");
            serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
        }
    }

    fn missing() -> CmdOutput {
        CmdOutput::exited(2, "")
    }

    #[test]
    fn parses_what_the_generator_writes() {
        let p = parse_properties("gid=2001\ndescription='Web app, it'\\''s mine'\nshell=/bin/sh\n")
            .unwrap();
        assert_eq!(p["gid"], "2001");
        assert_eq!(p["description"], "Web app, it's mine");
        assert_eq!(p["shell"], "/bin/sh");
        assert!(parse_properties("novalue\n").is_err());
        assert!(parse_properties("a='open\n").is_err());
    }

    #[test]
    fn creates_missing_groups_then_users_and_records_them() {
        let env = Env::new();
        let p = env.profile(
            "p1",
            &[("web", "gid=2001\n")],
            &[
                ("web", "uid=1001\ngroup=web\ndescription='The web app'\n"),
                ("old", "group=web\n"),
            ],
        );
        let m = env.manager(
            RecordingRunner::new()
                .respond("getent group web", missing())
                .respond("getent passwd web", missing()),
            false,
        );
        let changes = m.ensure(&p).unwrap();
        assert_eq!(
            m.runner().lines(Path::new("")),
            [
                "getent group web",
                "groupadd -g 2001 -- web",
                "getent passwd old",
                "getent passwd web",
                "useradd -u 1001 -g web -c 'The web app' -d /dev/null -M -- web",
            ]
        );
        assert_eq!(changes.created.users, BTreeSet::from(["web".to_string()]));
        assert_eq!(env.record().groups, BTreeSet::from(["web".to_string()]));
    }

    #[test]
    fn removes_only_accounts_it_created() {
        let env = Env::new();
        let p1 = env.profile("p1", &[("web", "")], &[("web", "group=web\n")]);
        let m = env.manager(
            RecordingRunner::new()
                .respond("getent group web", missing())
                .respond("getent passwd web", missing()),
            false,
        );
        m.ensure(&p1).unwrap();
        // The next profile declares a pre-existing account only.
        let p2 = env.profile("p2", &[], &[("www-data", "")]);
        let m = env.manager(RecordingRunner::new(), false);
        m.ensure(&p2).unwrap();
        let changes = m.remove_obsolete(&p2).unwrap();
        assert_eq!(
            m.runner().lines(Path::new("")),
            [
                "getent passwd www-data",
                "getent passwd web",
                "userdel -- web",
                "getent group web",
                "groupdel -- web",
            ]
        );
        assert_eq!(changes.removed.groups, BTreeSet::from(["web".to_string()]));
        assert_eq!(env.record(), Created::default());
        // www-data existed before: never recorded, never removed.
        let p0 = env.profile("p0", &[], &[]);
        let m = env.manager(RecordingRunner::new(), false);
        m.remove_obsolete(&p0).unwrap();
        assert!(m.runner().lines(Path::new("")).is_empty());
    }

    #[test]
    fn a_failing_useradd_undoes_the_group_it_made() {
        let env = Env::new();
        let p = env.profile("p", &[("web", "")], &[("web", "group=web\n")]);
        let m = env.manager(
            RecordingRunner::new()
                .respond("getent", missing())
                .fail("useradd", "useradd: bad"),
            false,
        );
        let err = m.ensure(&p).unwrap_err();
        assert!(format!("{err:#}").contains("creating user web"), "{err:#}");
        assert_eq!(
            m.runner().lines(Path::new("")).last().unwrap(),
            "groupdel -- web"
        );
        assert_eq!(env.record(), Created::default());
    }

    #[test]
    fn force_disable_user_change_only_makes_homes() {
        let env = Env::new();
        let home = env.dir.path().join("home/web");
        let text = format!(
            "homeDir={}\ncreateHomeDir=1\ncreateHomeDirOnly=1\n",
            home.display()
        );
        let p = env.profile("p", &[("web", "")], &[("web", &text)]);
        let m = env.manager(RecordingRunner::new(), true);
        let changes = m.ensure(&p).unwrap();
        assert!(m.runner().lines(Path::new("")).is_empty());
        assert!(home.is_dir());
        assert_eq!(changes.homes, [home]);
        m.remove_obsolete(&env.profile("p0", &[], &[])).unwrap();
        assert!(m.runner().lines(Path::new("")).is_empty());
    }

    #[test]
    fn existing_accounts_are_left_alone() {
        let env = Env::new();
        let p = env.profile("p", &[("root", "")], &[("root", "")]);
        let m = env.manager(RecordingRunner::new(), false);
        let changes = m.ensure(&p).unwrap();
        assert_eq!(
            m.runner().lines(Path::new("")),
            ["getent group root", "getent passwd root"]
        );
        assert_eq!(changes, AccountChanges::default());
    }
}
