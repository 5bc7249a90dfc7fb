//! Golden unit files, round trips through an implementation of systemd's
//! documented unquoting rules, and the real systemd: `systemd-analyze
//! verify` must accept the generated units, and systemd's own parser
//! (`systemd --test`, which dumps the loaded units) must read back every
//! hostile argument and environment value byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use nixproc_core::agnostic::create_managed_process;
use nixproc_core::package::PackageSpec;
use nixproc_core::systemd::{
    create_systemd_service, environment_assignment, exec_command, exec_word,
};
use nixproc_core::value::attrs;
use nixproc_core::Value;
use proptest::prelude::*;

const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello-2.12/bin/hello";
const WEBAPP: &str = "/nix/store/22222222222222222222222222222222-webapp/bin/webapp";
const COREUTILS: &str = "/nix/store/33333333333333333333333333333333-coreutils-9.1";

/// Strings that break naive quoting in unit files and shells.
const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "quote ' \" mix",
    "$(echo pwned) `echo pwned` ${HOME} $HOME $$",
    "semi ; rm -rf / ; &&",
    ";",
    "new\nline\ttab",
    "100% %i %n %% %",
    "\\backslash\\ \\n \\\"",
    "ünïcødé ✓",
    "",
    "-dash",
    "trailing\\",
];

fn dep(name: &str) -> Value {
    attrs([("name", Value::from(name))])
}

fn layout(p: &PackageSpec) -> String {
    p.files
        .iter()
        .map(|f| format!("{} ({:o})", f.path, f.mode))
        .chain(
            p.links
                .iter()
                .map(|l| format!("{} -> {}", l.path, l.target)),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

fn manifest_json(p: &PackageSpec) -> String {
    let mut m = serde_json::to_value(&p.manifest).unwrap();
    m["revision"] = "<revision>".into();
    serde_json::to_string_pretty(&m).unwrap()
}

// ---------------------------------------------------------------------------
// An independent implementation of systemd's reading rules (systemd.unit(5),
// systemd.service(5) "Command lines", systemd.exec(5) "Environment="), used
// to prove that what the generator writes is what the process gets.
// ---------------------------------------------------------------------------

/// Specifier expansion as far as nixproc relies on it: `%%` → `%`; any
/// other specifier is left for systemd (and fails the round trip).
fn expand_specifiers(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            other => return Err(format!("specifier %{other:?} would be expanded in {s:?}")),
        }
    }
    Ok(out)
}

/// `extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE)`: whitespace
/// separates words; double and single quotes group; backslash escapes are
/// C escapes (`\\ \" \' \n \t \r \a \b \f \v \s \xHH \ooo`). Works on
/// bytes, as systemd does.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let b = s.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b" \t".contains(&b[i]) {
            i += 1;
        }
        if i == b.len() {
            return Ok(words);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            match (quote, c) {
                (None, b' ' | b'\t') => break,
                (None, b'"' | b'\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (_, b'\\') => {
                    i += 1;
                    let e = *b.get(i).ok_or("trailing backslash")?;
                    match e {
                        b'\\' | b'"' | b'\'' | b'$' | b'`' => word.push(e),
                        b'n' => word.push(b'\n'),
                        b't' => word.push(b'\t'),
                        b'r' => word.push(b'\r'),
                        b'a' => word.push(7),
                        b'b' => word.push(8),
                        b'f' => word.push(12),
                        b'v' => word.push(11),
                        b's' => word.push(b' '),
                        b'x' => {
                            let hex = s.get(i + 1..i + 3).ok_or("short \\x")?;
                            word.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
                            i += 2;
                        }
                        b'0'..=b'7' => {
                            let oct = s.get(i..i + 3).ok_or("short octal")?;
                            word.push(u8::from_str_radix(oct, 8).map_err(|e| e.to_string())?);
                            i += 2;
                        }
                        other => return Err(format!("bad escape \\{}", other as char)),
                    }
                }
                (_, c) => word.push(c),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err(format!("unterminated quote in {s:?}"));
        }
        words.push(String::from_utf8(word).map_err(|e| e.to_string())?);
    }
}

/// What `ExecStart=<line>` executes: specifiers, words, then `$$` → `$`
/// in the arguments (systemd does not expand the executable path).
fn read_exec_line(line: &str) -> Result<Vec<String>, String> {
    let words = split_words(&expand_specifiers(line)?)?;
    if let Some(w) = words
        .iter()
        .skip(1)
        .find(|w| w.replace("$$", "").contains('$'))
    {
        return Err(format!("{w:?} would be variable-expanded"));
    }
    Ok(variable_expansion(words))
}

/// `$$` → `$` in the arguments, as systemd does when it runs the command
/// (its dump shows the command line before that step).
fn variable_expansion(words: Vec<String>) -> Vec<String> {
    words
        .into_iter()
        .enumerate()
        .map(|(i, w)| if i == 0 { w } else { w.replace("$$", "$") })
        .collect()
}

/// What `Environment=<operand>` assigns: unquote and unescape first, then
/// specifiers (the order of systemd's `config_parse_environ`).
fn read_environment(operand: &str) -> Result<(String, String), String> {
    let words = split_words(operand)?;
    let [word] = words.as_slice() else {
        return Err(format!("{operand:?} is not one assignment"));
    };
    let word = expand_specifiers(word)?;
    let (k, v) = word.split_once('=').ok_or("no =")?;
    Ok((k.to_string(), v.to_string()))
}

/// The property lines of a unit file, as `(section, key, value)`.
fn properties(unit: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in unit.lines() {
        if let Some(s) = line.strip_prefix('[') {
            section = s.trim_end_matches(']').to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.to_string(), v.to_string()));
        }
    }
    out
}

fn property(unit: &str, key: &str) -> Vec<String> {
    properties(unit)
        .into_iter()
        .filter(|(_, k, _)| k == key)
        .map(|(_, _, v)| v)
        .collect()
}

#[test]
fn unquoter_follows_the_documented_examples() {
    // systemd.service(5): `ExecStart=/bin/echo "one" 'two' "three four"`.
    assert_eq!(
        split_words(r#"/bin/echo "one" 'two' "three four""#).unwrap(),
        ["/bin/echo", "one", "two", "three four"]
    );
    assert_eq!(split_words(r#"a "b\nc" \x41"#).unwrap(), ["a", "b\nc", "A"]);
    assert_eq!(
        read_environment(r#""VAR1=word1 word2" VAR2=word3"#).unwrap_err(),
        "\"\\\"VAR1=word1 word2\\\" VAR2=word3\" is not one assignment"
    );
    assert!(read_exec_line("/bin/x $HOME").is_err());
    assert!(read_exec_line("/bin/x %i").is_err());
}

#[test]
fn hostile_words_round_trip() {
    for h in HOSTILE {
        let args: Vec<String> = vec![h.to_string(), format!("--opt={h}")];
        let line = exec_command("process", "/bin/echo", &args).unwrap();
        assert!(!line.contains('\n'), "{line:?}");
        assert_eq!(
            read_exec_line(&line).unwrap(),
            [
                String::from("/bin/echo"),
                h.to_string(),
                format!("--opt={h}")
            ],
            "{line}"
        );
        if !h.contains('\r') {
            let operand = environment_assignment("V", h);
            assert_eq!(
                read_environment(&operand).unwrap(),
                ("V".to_string(), h.to_string()),
                "{operand}"
            );
        }
    }
}

proptest! {
    #[test]
    fn exec_words_round_trip(words in proptest::collection::vec(any::<String>(), 0..5)) {
        let words: Vec<String> = words.into_iter().map(|w| w.replace('\0', "")).collect();
        let line = exec_command("process", "/bin/x", &words).unwrap();
        prop_assert!(!line.contains(['\n', '\r']));
        let mut expected = vec!["/bin/x".to_string()];
        expected.extend(words.iter().cloned());
        prop_assert_eq!(read_exec_line(&line).unwrap(), expected);
        for w in &words {
            prop_assert_eq!(read_exec_line(&format!("/bin/x {}", exec_word(w))).unwrap()[1].clone(), w.clone());
        }
    }

    #[test]
    fn environment_round_trip(value in "[^\\x00-\\x08\\x0b-\\x1f\\x7f]*") {
        let operand = environment_assignment("NAME", &value);
        prop_assert!(!operand.contains(['\n', '\r']));
        prop_assert_eq!(read_environment(&operand).unwrap(), ("NAME".to_string(), value));
    }
}

// ---------------------------------------------------------------------------
// Golden files
// ---------------------------------------------------------------------------

/// The §3.4.6 example: `hello2` with a user, PATH, environment and a
/// dependency, through the agnostic layer.
fn hello2() -> Value {
    attrs([
        ("processManager", "systemd".into()),
        ("instanceName", "hello2".into()),
        ("description", "Hello 2".into()),
        ("process", HELLO.into()),
        ("args", vec!["--port", "7000"].into()),
        ("user", "hello2".into()),
        ("environment", attrs([("PORT", Value::Int(7000))])),
        ("path", vec![COREUTILS].into()),
        ("dependencies", Value::List(vec![dep("nix-process-webapp")])),
        (
            "credentials",
            attrs([
                ("groups", attrs([("hello2", attrs::<_, &str>([]))])),
                (
                    "users",
                    attrs([(
                        "hello2",
                        attrs([
                            ("group", "hello2".into()),
                            ("description", "Hello 2".into()),
                        ]),
                    )]),
                ),
            ]),
        ),
    ])
}

#[test]
fn snapshot_foreground_example() {
    let p = create_managed_process(&hello2()).unwrap();
    insta::assert_snapshot!("foreground_example_unit", p.files[0].text);
    insta::assert_snapshot!("foreground_example_layout", layout(&p));
    insta::assert_snapshot!("foreground_example_manifest", manifest_json(&p));
}

#[test]
fn snapshot_daemon_with_initialize() {
    let p = create_managed_process(&attrs([
        ("processManager", "systemd".into()),
        ("instanceName", "webapp1".into()),
        ("description", "Simple web application 1".into()),
        ("daemon", WEBAPP.into()),
        ("daemonArgs", vec!["-D", "--port", "5000"].into()),
        ("user", "webapp1".into()),
        ("nice", Value::Int(5)),
        ("umask", "022".into()),
        ("directory", "/var/lib/webapp1".into()),
        (
            "initialize",
            "mkdir -p /var/lib/webapp1\nchown webapp1 /var/lib/webapp1".into(),
        ),
        (
            "overrides",
            attrs([(
                "systemd",
                attrs([("Install", attrs([("WantedBy", "multi-user.target".into())]))]),
            )]),
        ),
    ]))
    .unwrap();
    insta::assert_snapshot!("daemon_with_initialize_unit", p.files[0].text);
}

#[test]
fn snapshot_hostile_values() {
    let env: Vec<(String, Value)> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("V{i:02}"), Value::from(*h)))
        .collect();
    let p = create_managed_process(&attrs([
        ("processManager", "systemd".into()),
        ("name", "hostile".into()),
        ("description", "100% \"hostile\" $(x) `y`; \\z".into()),
        ("foregroundProcess", "/bin/echo".into()),
        ("args", Value::from(HOSTILE.to_vec())),
        ("environment", Value::Attrs(env.into_iter().collect())),
        ("initialize", "echo \"$HOME\" 100% `id`; exit 0".into()),
        ("user", "daemon".into()),
    ]))
    .unwrap();
    let unit = &p.files[0].text;
    insta::assert_snapshot!("hostile_values_unit", unit);

    // The file itself, read back by systemd's rules.
    let exec = property(unit, "ExecStart");
    let mut expected = vec!["/bin/echo".to_string()];
    expected.extend(HOSTILE.iter().map(|h| h.to_string()));
    assert_eq!(read_exec_line(&exec[0]).unwrap(), expected);
    let pre = property(unit, "ExecStartPre");
    let pre = pre[0]
        .strip_prefix('+')
        .expect("runs as root before the user switch");
    assert_eq!(
        read_exec_line(pre).unwrap(),
        ["/bin/sh", "-ec", "echo \"$HOME\" 100% `id`; exit 0"]
    );
    let env: BTreeMap<String, String> = property(unit, "Environment")
        .iter()
        .map(|e| read_environment(e).unwrap())
        .collect();
    let expected: BTreeMap<String, String> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, h)| (format!("V{i:02}"), h.to_string()))
        .collect();
    assert_eq!(env, expected);
    let description = property(unit, "Description");
    assert_eq!(
        expand_specifiers(&description[0]).unwrap(),
        "100% \"hostile\" $(x) `y`; \\z"
    );
}

// ---------------------------------------------------------------------------
// The real systemd
// ---------------------------------------------------------------------------

/// A private temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "nixproc-systemd-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the packages' unit files and `.wants` links into one directory,
/// as a profile (and the activator's target dir) holds them.
fn install(dir: &Path, packages: &[PackageSpec]) -> Vec<PathBuf> {
    let mut units = Vec::new();
    for p in packages {
        for f in p
            .files
            .iter()
            .filter(|f| f.path.starts_with("etc/systemd/system/"))
        {
            let path = dir.join(f.path.trim_start_matches("etc/systemd/system/"));
            fs::write(&path, &f.text).unwrap();
            units.push(path);
        }
        for l in &p.links {
            let path = dir.join(l.path.trim_start_matches("etc/systemd/system/"));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(&l.target, &path).unwrap();
        }
    }
    units
}

/// Units covering every translation path: foreground, daemon with PID file,
/// initialize as root before a user switch, dependencies, hostile values.
fn verification_units(runtime: &Path) -> Vec<PackageSpec> {
    let managed = |pairs: Vec<(&str, Value)>| {
        let mut all = vec![
            ("processManager", Value::from("systemd")),
            ("prefix", "nixproc-test-".into()),
            ("runtimeDir", runtime.to_str().unwrap().into()),
        ];
        all.extend(pairs);
        create_managed_process(&attrs(all)).unwrap()
    };
    let env: BTreeMap<String, Value> = HOSTILE
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.contains('\r'))
        .map(|(i, h)| (format!("V{i:02}"), Value::from(*h)))
        .collect();
    vec![
        managed(vec![
            ("name", "fg".into()),
            ("foregroundProcess", "/bin/sleep".into()),
            ("args", vec!["1000"].into()),
        ]),
        managed(vec![
            ("instanceName", "daemon".into()),
            ("daemon", "/bin/sh".into()),
            (
                "daemonArgs",
                vec!["-c", "sleep 1000 & echo $! > \"$0\"", "/run/daemon.pid"].into(),
            ),
        ]),
        managed(vec![
            ("name", "asuser".into()),
            ("process", "/bin/sleep".into()),
            ("args", vec!["1000"].into()),
            ("user", "daemon".into()),
            (
                "initialize",
                "mkdir -p /tmp/asuser\nchown nobody /tmp/asuser".into(),
            ),
            ("directory", "/tmp".into()),
            ("umask", "077".into()),
            ("nice", Value::Int(-3)),
        ]),
        managed(vec![
            ("name", "asroot".into()),
            ("process", "/bin/sleep".into()),
            ("args", vec!["1000"].into()),
            ("user", "root".into()),
            ("initialize", "true".into()),
        ]),
        managed(vec![
            ("name", "withdeps".into()),
            ("process", "/bin/sleep".into()),
            ("args", vec!["1000"].into()),
            (
                "dependencies",
                Value::List(vec![dep("nixproc-test-fg"), dep("nixproc-test-daemon")]),
            ),
            ("path", vec!["/usr"].into()),
        ]),
        managed(vec![
            ("name", "hostile".into()),
            (
                "description",
                "100% \"hostile\" $(x) `y`; \\z\nsecond line".into(),
            ),
            ("foregroundProcess", "/bin/echo".into()),
            ("args", Value::from(HOSTILE.to_vec())),
            ("environment", Value::Attrs(env)),
            ("initialize", "echo \"$HOME\" 100% `id`; exit 0".into()),
            ("user", "daemon".into()),
        ]),
        create_systemd_service(&attrs([
            ("name", "raw".into()),
            ("prefix", "nixproc-test-".into()),
            (
                "Service",
                attrs([
                    ("ExecStart", "/bin/sleep 1000".into()),
                    ("PrivateTmp", true.into()),
                    ("RemainAfterExit", false.into()),
                    ("Restart", "on-failure".into()),
                ]),
            ),
            (
                "Install",
                attrs([("WantedBy", vec!["multi-user.target"].into())]),
            ),
        ]))
        .unwrap(),
    ]
}

fn assert_systemd_252_or_later() {
    let out = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .expect("systemd-analyze is installed (scripts/setup.sh installs systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let version: u32 = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unexpected systemd-analyze --version: {text}"));
    assert!(
        version >= 245,
        "systemd {version} is too old for these tests"
    );
}

#[test]
fn systemd_analyze_verify_accepts_generated_units() {
    assert_systemd_252_or_later();
    let tmp = TempDir::new("verify");
    let packages = verification_units(&tmp.0);
    let units = install(&tmp.0, &packages);
    // The trailing ':' appends the default unit path, so that
    // multi-user.target and friends resolve.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", tmp.0.display()))
        .env("SYSTEMD_LOG_LEVEL", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("nixproc-test-") || l.contains(tmp.0.to_str().unwrap()))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn systemd_analyze_verify_notices_a_broken_unit() {
    // The check above is only worth something if verify complains at all.
    let tmp = TempDir::new("verify-broken");
    let unit = tmp.0.join("nixproc-test-broken.service");
    fs::write(
        &unit,
        "[Service]\nExecStart=/nonexistent/nixproc-x\nTyp=simple\n",
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(&unit)
        .env("SYSTEMD_UNIT_PATH", format!("{}:", tmp.0.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nixproc-test-broken.service"), "{stderr}");
}

/// systemd's own dump of a loaded unit (`systemd --test --system`, run as
/// `nobody`: test mode refuses root). Only the block of `unit`.
fn systemd_dump(dir: &Path, unit: &str) -> String {
    let mut cmd = if rustix_is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/lib/systemd/systemd",
        ]);
        c
    } else {
        Command::new("/lib/systemd/systemd")
    };
    let out = cmd
        .args(["--test", "--system", "--no-pager"])
        .arg(format!("--unit={unit}"))
        .env("SYSTEMD_UNIT_PATH", format!("{}:", dir.display()))
        .env("SYSTEMD_LOG_TARGET", "console")
        .env("HOME", "/")
        .output()
        .expect("running systemd --test");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let start = text.find(&format!("-> Unit {unit}:\n")).unwrap_or_else(|| {
        panic!(
            "no dump of {unit}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let rest = &text[start + 1..];
    let end = rest.find("-> Unit ").unwrap_or(rest.len());
    rest[..end].to_string()
}

fn rustix_is_root() -> bool {
    // No libc dependency in this crate: ask id(1).
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn systemd_reads_back_hostile_arguments_and_environment() {
    let tmp = TempDir::new("dump");
    fs::set_permissions(&tmp.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let packages = verification_units(&tmp.0);
    install(&tmp.0, &packages);
    for f in fs::read_dir(&tmp.0).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        }
    }
    let dump = systemd_dump(&tmp.0, "nixproc-test-hostile.service");

    // ExecStart / ExecStartPre: systemd prints each command line re-quoted.
    let lines: Vec<Vec<String>> = dump
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Command Line: "))
        .map(|l| variable_expansion(split_words(l).unwrap()))
        .collect();
    let mut expected_start = vec!["/bin/echo".to_string()];
    expected_start.extend(HOSTILE.iter().map(|h| h.to_string()));
    assert!(lines.contains(&expected_start), "{lines:?}\n{dump}");
    let expected_pre: Vec<String> = ["/bin/sh", "-ec", "echo \"$HOME\" 100% `id`; exit 0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(lines.contains(&expected_pre), "{lines:?}");

    // Environment: printed raw, one `Environment: NAME=value` each.
    for (i, h) in HOSTILE
        .iter()
        .enumerate()
        .filter(|(_, h)| !h.contains('\r'))
    {
        let line = format!("\tEnvironment: V{i:02}={h}\n");
        assert!(dump.contains(&line), "missing {line:?} in\n{dump}");
    }
    assert!(
        dump.contains("\tDescription: 100% \"hostile\" $(x) `y`; \\z second line\n"),
        "{dump}"
    );
}

#[test]
fn systemd_reads_daemon_and_user_settings() {
    let tmp = TempDir::new("dump2");
    fs::set_permissions(&tmp.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    install(&tmp.0, &verification_units(&tmp.0));
    for f in fs::read_dir(&tmp.0).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        }
    }
    let daemon = systemd_dump(&tmp.0, "nixproc-test-daemon.service");
    assert!(daemon.contains("\tType: forking\n"), "{daemon}");
    assert!(
        daemon.contains(&format!("\tPIDFile: {}/daemon.pid\n", tmp.0.display())),
        "{daemon}"
    );
    let cmd: Vec<Vec<String>> = daemon
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Command Line: "))
        .map(|l| variable_expansion(split_words(l).unwrap()))
        .collect();
    assert_eq!(
        cmd,
        [[
            "/bin/sh",
            "-c",
            "sleep 1000 & echo $! > \"$0\"",
            "/run/daemon.pid"
        ]]
    );

    let user = systemd_dump(&tmp.0, "nixproc-test-asuser.service");
    for want in [
        "\tUser: daemon\n",
        "\tUMask: 0077\n",
        "\tNice: -3\n",
        "\tWorkingDirectory: /tmp\n",
    ] {
        assert!(user.contains(want), "missing {want:?} in\n{user}");
    }

    let deps = systemd_dump(&tmp.0, "nixproc-test-withdeps.service");
    for want in [
        "Wants: nixproc-test-fg.service",
        "Wants: nixproc-test-daemon.service",
        "After: nixproc-test-fg.service",
        "After: nixproc-test-daemon.service",
    ] {
        assert!(deps.contains(want), "missing {want:?} in\n{deps}");
    }
}
