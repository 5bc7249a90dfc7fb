//! The users and groups a process needs, as Dysnomia reads them
//! (reference §2.5): `dysnomia-support/groups/<group>` and
//! `dysnomia-support/users/<user>`, each a file of `key=value` shell
//! assignments that `dysnomia-addgroups`/`dysnomia-addusers` source.
//!
//! Every backend that creates users (all but cygrunsrv and docker) puts
//! these files into its process packages; [`credential_files`] is the one
//! implementation they share.

use std::collections::BTreeMap;

use crate::args::{string_like, Args};
use crate::error::{Error, Result};
use crate::package::FileSpec;
use crate::quote::shell_escape;
use crate::value::Value;

/// Mode of the generated credential files (read-only data, not scripts).
pub const CREDENTIAL_FILE_MODE: u32 = 0o444;

/// The numeric IDs assigned by `nixproc-id-assign` (the `ids` attrset of an
/// `ids.nix`). Only `uids` and `gids` matter here; other resources in the
/// same attrset (ports, …) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ids {
    pub uids: BTreeMap<String, i64>,
    pub gids: BTreeMap<String, i64>,
}

impl Ids {
    /// Reads `{ uids = { name = int; }; gids = { … }; … }`; errors are named
    /// `ids.uids.<name>` etc.
    pub fn from_attrs(ids: Option<&BTreeMap<String, Value>>) -> Result<Ids> {
        let Some(ids) = ids else {
            return Ok(Ids::default());
        };
        let table = |key: &str| -> Result<BTreeMap<String, i64>> {
            match ids.get(key) {
                None | Some(Value::Null) => Ok(BTreeMap::new()),
                Some(Value::Attrs(m)) => m
                    .iter()
                    .map(|(name, v)| match v {
                        Value::Int(i) => Ok((name.clone(), *i)),
                        other => Err(Error::WrongType {
                            attr: format!("ids.{key}.{name}"),
                            expected: "an integer".into(),
                            found: other.type_name(),
                        }),
                    })
                    .collect(),
                Some(other) => Err(Error::WrongType {
                    attr: format!("ids.{key}"),
                    expected: "a set".into(),
                    found: other.type_name(),
                }),
            }
        };
        Ok(Ids {
            uids: table("uids")?,
            gids: table("gids")?,
        })
    }
}

/// A name that is safe as a single file name and as a shell/LSB word:
/// non-empty, not `.`/`..`, without `/`, whitespace or control characters.
pub fn is_plain_name(name: &str) -> bool {
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control()))
}

/// Checks a user or group name: it becomes a file name and a `useradd`
/// argument, so it must be non-empty, not `.`/`..`, and free of `/`,
/// whitespace and control characters.
pub fn check_account_name(attr: &str, what: &str, name: &str) -> Result<()> {
    if !is_plain_name(name) {
        return Err(Error::invalid(
            attr,
            format!(
                "{what} name {name:?} is not valid (it must be non-empty and contain no '/', \
                 whitespace or control characters)"
            ),
        ));
    }
    Ok(())
}

/// A property key becomes a shell variable name when Dysnomia sources the
/// file, so it must be an identifier.
pub fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Properties of one user or group: validated keys, values rendered as
/// Dysnomia expects (`true` → `1`, `false` → empty), `null` dropped.
fn properties(attr: &str, v: &Value) -> Result<BTreeMap<String, String>> {
    let Value::Attrs(map) = v else {
        return Err(Error::WrongType {
            attr: attr.to_string(),
            expected: "a set of properties".into(),
            found: v.type_name(),
        });
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let key_attr = format!("{attr}.{key}");
        if !is_identifier(key) {
            return Err(Error::invalid(
                key_attr,
                "property names must match [A-Za-z_][A-Za-z0-9_]* (they become shell variables)",
            ));
        }
        if matches!(value, Value::Null) {
            continue;
        }
        out.insert(key.clone(), string_like(&key_attr, value)?);
    }
    Ok(out)
}

fn render(first: Option<(&str, String)>, props: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (k, v) in first
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    {
        text.push_str(k);
        text.push('=');
        text.push_str(&shell_escape(v));
        text.push('\n');
    }
    text
}

/// The `dysnomia-support` files for `credentials = { groups = { … }; users = { … }; }`
/// (paths relative to the package output, mode [`CREDENTIAL_FILE_MODE`]).
///
/// * groups: one file per group unless `force_disable_user_change`; a first
///   line `gid=<n>` from `ids.gids` when the group sets no `gid`, then every
///   property sorted as `key=<shell-escaped value>`.
/// * users: likewise with `uid`/`ids.uids`. Under
///   `force_disable_user_change` no user is created: a file is written only
///   for users with `createHomeDir = true`, containing exactly `homeDir`,
///   `createHomeDir=1` and `createHomeDirOnly=1` so the home directory is
///   still made.
///
/// Groups come first, then users, each in name order. An empty result means
/// an empty `dysnomia-support/` (the caller still creates the directory).
pub fn credential_files(
    credentials: Option<&BTreeMap<String, Value>>,
    ids: &Ids,
    force_disable_user_change: bool,
) -> Result<Vec<FileSpec>> {
    let Some(credentials) = credentials else {
        return Ok(Vec::new());
    };
    let whole = Value::Attrs(credentials.clone());
    let args = Args::new(&whole, "")?;
    let groups = args.attrs("groups").map_err(|e| e.within("credentials"))?;
    let users = args.attrs("users").map_err(|e| e.within("credentials"))?;
    args.finish().map_err(|e| e.within("credentials"))?;

    let mut files = Vec::new();
    for (group, v) in groups.into_iter().flatten() {
        let attr = format!("credentials.groups.{group}");
        check_account_name(&attr, "group", group)?;
        let props = properties(&attr, v)?;
        if force_disable_user_change {
            continue;
        }
        let gid = match (props.contains_key("gid"), ids.gids.get(group)) {
            (false, Some(n)) => Some(("gid", n.to_string())),
            _ => None,
        };
        files.push(FileSpec {
            path: format!("dysnomia-support/groups/{group}"),
            text: render(gid, &props),
            mode: CREDENTIAL_FILE_MODE,
        });
    }
    for (user, v) in users.into_iter().flatten() {
        let attr = format!("credentials.users.{user}");
        check_account_name(&attr, "user", user)?;
        let props = properties(&attr, v)?;
        let create_home = props.get("createHomeDir").is_some_and(|v| v == "1");
        let home = props.get("homeDir").filter(|h| !h.is_empty());
        if create_home && home.is_none() {
            return Err(Error::Missing {
                attr: format!("{attr}.homeDir"),
                why: "createHomeDir is set, so a home directory must be given".into(),
            });
        }
        let text = if force_disable_user_change {
            let Some(home) = home.filter(|_| create_home) else {
                continue;
            };
            // Exactly these three, in this (documented) order.
            format!(
                "homeDir={}\ncreateHomeDir=1\ncreateHomeDirOnly=1\n",
                shell_escape(home)
            )
        } else {
            let uid = match (props.contains_key("uid"), ids.uids.get(user)) {
                (false, Some(n)) => Some(("uid", n.to_string())),
                _ => None,
            };
            render(uid, &props)
        };
        files.push(FileSpec {
            path: format!("dysnomia-support/users/{user}"),
            text,
            mode: CREDENTIAL_FILE_MODE,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::attrs;

    fn creds(v: Value) -> BTreeMap<String, Value> {
        v.as_attrs().unwrap().clone()
    }

    fn ids() -> Ids {
        Ids::from_attrs(
            attrs([
                ("uids", attrs([("webapp", Value::Int(1001))])),
                ("gids", attrs([("webapp", Value::Int(2001))])),
                ("webappPorts", attrs([("webapp", Value::Int(5000))])),
            ])
            .as_attrs(),
        )
        .unwrap()
    }

    fn sample() -> BTreeMap<String, Value> {
        creds(attrs([
            ("groups", attrs([("webapp", attrs::<_, &str>([]))])),
            (
                "users",
                attrs([(
                    "webapp",
                    attrs([
                        ("group", "webapp".into()),
                        ("description", "Web app, it's mine".into()),
                        ("homeDir", "/var/lib/webapp".into()),
                        ("createHomeDir", true.into()),
                        ("shell", "/bin/sh".into()),
                        ("password", Value::Null),
                    ]),
                )]),
            ),
        ]))
    }

    #[test]
    fn ids_fill_in_missing_uid_and_gid_first() {
        let files = credential_files(Some(&sample()), &ids(), false).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "dysnomia-support/groups/webapp");
        assert_eq!(files[0].text, "gid=2001\n");
        assert_eq!(files[0].mode, 0o444);
        assert_eq!(files[1].path, "dysnomia-support/users/webapp");
        assert_eq!(
            files[1].text,
            "uid=1001\ncreateHomeDir=1\ndescription='Web app, it'\\''s mine'\n\
             group=webapp\nhomeDir=/var/lib/webapp\nshell=/bin/sh\n"
        );
    }

    #[test]
    fn explicit_ids_win_and_are_sorted_with_the_rest() {
        let c = creds(attrs([
            (
                "groups",
                attrs([("webapp", attrs([("gid", Value::Int(7))]))]),
            ),
            (
                "users",
                attrs([(
                    "webapp",
                    attrs([("uid", Value::Int(8)), ("createHomeDir", false.into())]),
                )]),
            ),
        ]));
        let files = credential_files(Some(&c), &ids(), false).unwrap();
        assert_eq!(files[0].text, "gid=7\n");
        assert_eq!(files[1].text, "createHomeDir=''\nuid=8\n");
    }

    #[test]
    fn no_ids_no_id_lines() {
        let files = credential_files(Some(&sample()), &Ids::default(), false).unwrap();
        assert_eq!(files[0].text, "");
        assert!(files[1].text.starts_with("createHomeDir=1\n"));
    }

    #[test]
    fn force_disable_user_change_keeps_only_home_dirs() {
        let files = credential_files(Some(&sample()), &ids(), true).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, "dysnomia-support/users/webapp");
        assert_eq!(
            files[0].text,
            "homeDir=/var/lib/webapp\ncreateHomeDir=1\ncreateHomeDirOnly=1\n"
        );

        let no_home = creds(attrs([(
            "users",
            attrs([("u", attrs([("homeDir", "/home/u".into())]))]),
        )]));
        assert!(credential_files(Some(&no_home), &ids(), true)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn absent_credentials_give_no_files() {
        assert!(credential_files(None, &ids(), false).unwrap().is_empty());
        let empty = BTreeMap::new();
        assert!(credential_files(Some(&empty), &ids(), false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn hostile_values_are_escaped() {
        let c = creds(attrs([(
            "users",
            attrs([(
                "u",
                attrs([("description", "$(id) `x`; \"q\" 'y'\nz".into())]),
            )]),
        )]));
        let files = credential_files(Some(&c), &Ids::default(), false).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{}printf %s \"$description\"", files[0].text))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "$(id) `x`; \"q\" 'y'\nz"
        );
    }

    fn err(c: Value, ids: &Ids) -> String {
        credential_files(Some(&creds(c)), ids, false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn validation_errors_name_the_attribute() {
        assert_eq!(
            err(attrs([("user", attrs::<_, &str>([]))]), &Ids::default()),
            "unknown parameter 'credentials.user' (did you mean 'users'?)"
        );
        assert_eq!(
            err(attrs([("groups", Value::List(vec![]))]), &Ids::default()),
            "attribute 'credentials.groups' must be a set, but it is list"
        );
        assert_eq!(
            err(
                attrs([("groups", attrs([("a/b", attrs::<_, &str>([]))]))]),
                &Ids::default()
            ),
            "attribute 'credentials.groups.a/b': group name \"a/b\" is not valid (it must be \
             non-empty and contain no '/', whitespace or control characters)"
        );
        assert_eq!(
            err(
                attrs([("users", attrs([("a b", attrs::<_, &str>([]))]))]),
                &Ids::default()
            ),
            "attribute 'credentials.users.a b': user name \"a b\" is not valid (it must be \
             non-empty and contain no '/', whitespace or control characters)"
        );
        assert!(err(
            attrs([("users", attrs([("", attrs::<_, &str>([]))]))]),
            &Ids::default()
        )
        .contains("user name \"\" is not valid"));
        assert_eq!(
            err(
                attrs([("users", attrs([("u", attrs([("home-dir", "/h".into())]))]))]),
                &Ids::default()
            ),
            "attribute 'credentials.users.u.home-dir': property names must match \
             [A-Za-z_][A-Za-z0-9_]* (they become shell variables)"
        );
        assert_eq!(
            err(
                attrs([(
                    "users",
                    attrs([("u", attrs([("shell", Value::List(vec![]))]))])
                )]),
                &Ids::default()
            ),
            "attribute 'credentials.users.u.shell' must be a string or a number, but it is list"
        );
        assert_eq!(
            err(
                attrs([("users", attrs([("u", "x".into())]))]),
                &Ids::default()
            ),
            "attribute 'credentials.users.u' must be a set of properties, but it is string"
        );
        assert_eq!(
            err(
                attrs([(
                    "users",
                    attrs([("u", attrs([("createHomeDir", true.into())]))])
                )]),
                &Ids::default()
            ),
            "attribute 'credentials.users.u.homeDir' is required: createHomeDir is set, so a \
             home directory must be given"
        );
    }

    #[test]
    fn ids_must_be_integers() {
        let e =
            Ids::from_attrs(attrs([("uids", attrs([("u", "1".into())]))]).as_attrs()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute 'ids.uids.u' must be an integer, but it is string"
        );
        let e = Ids::from_attrs(attrs([("gids", Value::Int(1))]).as_attrs()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "attribute 'ids.gids' must be a set, but it is int"
        );
    }
}
