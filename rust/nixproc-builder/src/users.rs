//! User look-up and privilege dropping without NSS.
//!
//! A statically linked glibc cannot load NSS modules, so `getpwnam`,
//! `getgrnam` and `initgroups` are off limits. `/etc/passwd` and `/etc/group`
//! are parsed here instead; that covers local users, which is what process
//! management deals with.

use anyhow::{bail, Context, Result};
use std::path::Path;

pub const PASSWD_FILE: &str = "/etc/passwd";
pub const GROUP_FILE: &str = "/etc/group";

/// A user with the credentials a process switching to it must take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub name: String,
    pub uid: u32,
    /// Primary group.
    pub gid: u32,
    /// Supplementary groups, primary group first, no duplicates.
    pub groups: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The colon-separated records of passwd(5)/group(5) text, without blank
/// lines and comments.
fn records(text: &str) -> impl Iterator<Item = std::str::Split<'_, char>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':'))
}

/// Parses passwd(5) text; malformed lines and comments are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|mut fields| {
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.trim().parse().ok()?;
            let gid = fields.next()?.trim().parse().ok()?;
            if name.is_empty() || name.starts_with('+') || name.starts_with('-') {
                return None;
            }
            Some(PasswdEntry {
                name: name.to_string(),
                uid,
                gid,
            })
        })
        .collect()
}

/// Parses group(5) text; malformed lines and comments are skipped.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|mut fields| {
            let name = fields.next()?;
            let _password = fields.next()?;
            let gid = fields.next()?.trim().parse().ok()?;
            let members = fields
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            if name.is_empty() || name.starts_with('+') || name.starts_with('-') {
                return None;
            }
            Some(GroupEntry {
                name: name.to_string(),
                gid,
                members,
            })
        })
        .collect()
}

/// Resolves `user` (a name, or a numeric uid that has a passwd entry) and its
/// groups: the primary group plus every group listing the user as a member,
/// as `initgroups` would.
pub fn resolve(user: &str, passwd: &[PasswdEntry], group: &[GroupEntry]) -> Result<Credentials> {
    let entry = passwd.iter().find(|e| e.name == user).or_else(|| {
        user.parse::<u32>()
            .ok()
            .and_then(|uid| passwd.iter().find(|e| e.uid == uid))
    });
    let Some(entry) = entry else {
        bail!("unknown user '{user}' (not in {PASSWD_FILE})");
    };
    let mut groups = vec![entry.gid];
    for g in group {
        if g.members.contains(&entry.name) && !groups.contains(&g.gid) {
            groups.push(g.gid);
        }
    }
    Ok(Credentials {
        name: entry.name.clone(),
        uid: entry.uid,
        gid: entry.gid,
        groups,
    })
}

/// Resolves `user` from the system's `/etc/passwd` and `/etc/group`.
pub fn lookup(user: &str) -> Result<Credentials> {
    lookup_in(user, Path::new(PASSWD_FILE), Path::new(GROUP_FILE))
}

pub fn lookup_in(user: &str, passwd: &Path, group: &Path) -> Result<Credentials> {
    let passwd_text = std::fs::read_to_string(passwd)
        .with_context(|| format!("cannot read {}", passwd.display()))?;
    // A missing group file only loses supplementary groups.
    let group_text = std::fs::read_to_string(group).unwrap_or_default();
    resolve(user, &parse_passwd(&passwd_text), &parse_group(&group_text))
}

/// Resolves `user` and checks that this process can become it: root can
/// become anyone, anybody else only themselves (then nothing is changed).
/// Returns `None` when no switch is needed.
pub fn prepare_switch(user: &str) -> Result<Option<Credentials>> {
    let creds = lookup(user)?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        Ok(Some(creds))
    } else if creds.uid == euid {
        Ok(None)
    } else {
        bail!(
            "cannot switch to user '{}': only root can change user (running as uid {euid})",
            creds.name
        )
    }
}

/// Drops privileges to `creds`: supplementary groups, then gid, then uid.
/// Only makes system calls, so it may run between fork and exec.
pub fn switch_to(creds: &Credentials) -> std::io::Result<()> {
    // SAFETY: plain system calls with valid pointers and lengths.
    unsafe {
        if libc::setgroups(creds.groups.len(), creds.groups.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::setgid(creds.gid) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::setuid(creds.uid) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment\n\
        \n\
        broken line\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        web:x:1001:1001::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        nogroup:x:65534:\n\
        web:x:1001:\n\
        www:x:33:web,other\n\
        adm:x:4: other , web \n\
        dup:x:1001:web\n";

    #[test]
    fn parses_and_resolves_groups() {
        let p = parse_passwd(PASSWD);
        let g = parse_group(GROUP);
        assert_eq!(p.len(), 3);
        let c = resolve("web", &p, &g).unwrap();
        assert_eq!(c.uid, 1001);
        assert_eq!(c.gid, 1001);
        assert_eq!(c.groups, vec![1001, 33, 4]);
        let n = resolve("nobody", &p, &g).unwrap();
        assert_eq!(n.groups, vec![65534]);
    }

    #[test]
    fn numeric_uid_and_unknown_user() {
        let p = parse_passwd(PASSWD);
        let g = parse_group(GROUP);
        assert_eq!(resolve("1001", &p, &g).unwrap().name, "web");
        let err = resolve("ghost", &p, &g).unwrap_err().to_string();
        assert!(err.contains("unknown user 'ghost'"), "{err}");
        assert!(resolve("4242", &p, &g).is_err());
    }
}
