use super::*;
use crate::agnostic;
use crate::value::attrs;

const RC_SUBR: &str = "/nix/store/00000000000000000000000000000000-rc.subr";
const WEBAPP: &str = "/nix/store/22222222222222222222222222222222-webapp/bin/webapp";

fn gen_with(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = vec![("rcSubr", Value::from(RC_SUBR))];
    all.extend(pairs);
    create_bsdrc_script(&attrs(all))
}

fn gen(pairs: Vec<(&str, Value)>) -> PackageSpec {
    gen_with(pairs).unwrap()
}

fn err(pairs: Vec<(&str, Value)>) -> String {
    gen_with(pairs).unwrap_err().to_string()
}

fn text(p: &PackageSpec) -> &str {
    &p.files[0].text
}

fn lines(p: &PackageSpec) -> Vec<&str> {
    text(p).lines().collect()
}

fn has(p: &PackageSpec, line: &str) {
    assert!(
        lines(p).contains(&line),
        "no line {line:?} in:\n{}",
        text(p)
    );
}

fn lacks(p: &PackageSpec, prefix: &str) {
    assert!(
        !lines(p).iter().any(|l| l.starts_with(prefix)),
        "unexpected {prefix:?} in:\n{}",
        text(p)
    );
}

fn daemon() -> Vec<(&'static str, Value)> {
    vec![
        ("instanceName", "webapp".into()),
        ("command", WEBAPP.into()),
        ("commandArgs", vec!["-D"].into()),
    ]
}

fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

#[test]
fn daemon_script_layout() {
    let p = gen(daemon());
    assert_eq!(p.files[0].path, "etc/rc.d/webapp");
    assert_eq!(p.files[0].mode, 0o555);
    let l = lines(&p);
    assert_eq!(l[0], "#!/bin/sh");
    assert_eq!(l[2], "# PROVIDE: webapp");
    has(&p, &format!(". {RC_SUBR}"));
    has(&p, "name=webapp");
    has(&p, "rcvar=webapp_enabled");
    has(&p, "desc=webapp");
    has(&p, "load_rc_config $name");
    has(&p, &format!("command={WEBAPP}"));
    has(&p, "command_args=-D");
    has(&p, "pidfile=/var/run/webapp.pid");
    has(&p, "extra_commands=\"reload\"");
    assert_eq!(*l.last().unwrap(), "run_rc_command \"$1\"");
    lacks(&p, "procname=");
    lacks(&p, "# REQUIRE");
    lacks(&p, "sig_");
}

#[test]
fn name_defaults_to_instance_name_and_is_required() {
    let p = gen(vec![("name", "x".into()), ("command", "/bin/x".into())]);
    assert_eq!(p.manifest.name, "x");
    let e = err(vec![("command", "/bin/x".into())]);
    assert!(e.contains("'name'"), "{e}");
    let e = err(vec![("name", "a/b".into()), ("command", "/bin/x".into())]);
    assert!(e.contains("not a valid process name"), "{e}");
}

#[test]
fn rc_variable_prefix_of_names() {
    assert_eq!(rc_var_prefix("webapp"), "webapp");
    assert_eq!(rc_var_prefix("hostile-fg"), "hostile_fg");
    assert_eq!(rc_var_prefix("nginx.2"), "nginx_2");
    assert_eq!(rc_var_prefix("1st"), "_1st");
    assert_eq!(rc_var_prefix("wébapp"), "w_bapp");
    let p = gen(vec![
        ("name", "php-fpm".into()),
        ("command", "/bin/x".into()),
    ]);
    assert_eq!(p.files[0].path, "etc/rc.d/php-fpm");
    has(&p, "# PROVIDE: php-fpm");
    has(&p, "name=php_fpm");
    has(&p, "rcvar=php_fpm_enabled");
}

#[test]
fn rcvar_is_a_parameter() {
    let p = gen(with(daemon(), vec![("rcvar", "enable".into())]));
    has(&p, "rcvar=webapp_enable");
    let p = gen(with(daemon(), vec![("rcvar", Value::Null)]));
    lacks(&p, "rcvar=");
    let e = err(with(daemon(), vec![("rcvar", "en able".into())]));
    assert!(e.contains("'rcvar'") && e.contains("[A-Za-z0-9_]+"), "{e}");
}

#[test]
fn rcvars_defaults_are_escaped_after_load_rc_config() {
    let p = gen(with(
        daemon(),
        vec![(
            "rcvarsDefaults",
            attrs([
                ("flags", Value::from("-v 'x' $(id)")),
                ("port", Value::Int(8080)),
            ]),
        )],
    ));
    has(&p, ": ${webapp_flags:='-v '\\''x'\\'' $(id)'}");
    has(&p, ": ${webapp_port:=8080}");
    let t = text(&p);
    assert!(t.find("load_rc_config").unwrap() < t.find(": ${webapp_flags").unwrap());
    let e = err(with(
        daemon(),
        vec![("rcvarsDefaults", attrs([("a-b", Value::from("x"))]))],
    ));
    assert!(e.contains("rcvarsDefaults.a-b"), "{e}");
}

#[test]
fn no_command_needs_start_and_stop() {
    let e = err(vec![("name", "x".into())]);
    assert!(e.contains("commands.start.implementation"), "{e}");
    let e = err(vec![
        ("name", "x".into()),
        (
            "commands",
            attrs([("start", attrs([("implementation", Value::from("echo hi"))]))]),
        ),
    ]);
    assert!(e.contains("commands.stop.implementation"), "{e}");
    let p = gen(vec![
        ("name", "x".into()),
        (
            "commands",
            attrs([
                (
                    "start",
                    attrs([("implementation", Value::from("echo start"))]),
                ),
                (
                    "stop",
                    attrs([("implementation", Value::from("echo stop"))]),
                ),
            ]),
        ),
    ]);
    has(&p, "start_cmd=x_start");
    has(&p, "stop_cmd=x_stop");
    has(&p, "x_start()");
    lacks(&p, "command=");
    lacks(&p, "extra_commands");
}

#[test]
fn pid_file_rules() {
    // No user: runtimeDir; user: tmpDir (declared user, also when user
    // switching is disabled); explicit wins.
    let p = gen(with(daemon(), vec![("runtimeDir", "/run/x".into())]));
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/run/x/webapp.pid"));
    let p = gen(with(daemon(), vec![("user", "web".into())]));
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/tmp/webapp.pid"));
    let p = gen(with(
        daemon(),
        vec![
            ("user", "web".into()),
            ("forceDisableUserChange", true.into()),
        ],
    ));
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/tmp/webapp.pid"));
    let p = gen(with(daemon(), vec![("pidFile", "/srv/w.pid".into())]));
    has(&p, "pidfile=/srv/w.pid");
    // A daemon without instance name or pidFile: rc.subr finds it by name.
    let p = gen(vec![("name", "w".into()), ("command", WEBAPP.into())]);
    lacks(&p, "pidfile=");
    assert_eq!(p.manifest.pid_file, None);
}

fn foreground() -> Vec<(&'static str, Value)> {
    vec![
        ("instanceName", "webapp".into()),
        ("command", WEBAPP.into()),
        ("commandIsDaemon", false.into()),
        ("commandArgs", vec!["--port", "80"].into()),
        ("daemon", "/usr/sbin/daemon".into()),
    ]
}

#[test]
fn foreground_uses_daemon_with_the_same_pid_file() {
    let p = gen(foreground());
    has(&p, "command=/usr/sbin/daemon");
    has(
        &p,
        &format!(
            "command_args='-p /var/run/webapp.pid -o /var/log/nixproc-webapp.log -- {WEBAPP} --port 80'"
        ),
    );
    has(&p, &format!("procname={WEBAPP}"));
    has(&p, "pidfile=/var/run/webapp.pid");
    assert_eq!(
        p.manifest.log_file.as_deref(),
        Some("/var/log/nixproc-webapp.log")
    );
    // Without instance name: the program's base name.
    let p = gen(vec![
        ("name", "w".into()),
        ("command", WEBAPP.into()),
        ("commandIsDaemon", false.into()),
        ("enableDaemonOutputLogging", false.into()),
    ]);
    has(
        &p,
        &format!("command_args='-p /var/run/webapp.pid -- {WEBAPP}'"),
    );
    assert_eq!(p.manifest.log_file, None);
}

#[test]
fn foreground_user_goes_to_daemon_u() {
    let p = gen(with(foreground(), vec![("user", "web".into())]));
    has(
        &p,
        &format!(
            "command_args='-p /tmp/webapp.pid -o /tmp/nixproc-webapp.log -u web -- {WEBAPP} --port 80'"
        ),
    );
    lacks(&p, "webapp_user=");
    assert_eq!(p.manifest.user.as_deref(), Some("web"));
}

#[test]
fn daemon_user_and_force_disable_user_change() {
    let p = gen(with(
        daemon(),
        vec![
            ("user", "web".into()),
            ("limits", "-n 1024".into()),
            ("loginClass", "daemon".into()),
        ],
    ));
    has(&p, "webapp_user=web");
    has(&p, "webapp_limits='-n 1024'");
    has(&p, "webapp_login_class=daemon");
    // The user-switching form of command_args (double-quoted words).
    has(&p, "command_args='\\\"-D\\\"'");
    let p = gen(with(
        daemon(),
        vec![
            ("user", "web".into()),
            ("limits", "-n 1024".into()),
            ("loginClass", "daemon".into()),
            ("forceDisableUserChange", true.into()),
        ],
    ));
    lacks(&p, "webapp_user");
    lacks(&p, "webapp_limits");
    lacks(&p, "webapp_login_class");
    has(&p, "command_args=-D");
    assert_eq!(p.manifest.user, None);
}

#[test]
fn single_quote_cannot_reach_a_user_switched_daemon() {
    let e = err(with(
        daemon(),
        vec![("user", "web".into()), ("commandArgs", vec!["it's"].into())],
    ));
    assert!(
        e.contains("'commandArgs'") && e.contains("single quote"),
        "{e}"
    );
    // Without user switching it is fine.
    gen(with(
        daemon(),
        vec![
            ("user", "web".into()),
            ("commandArgs", vec!["it's"].into()),
            ("forceDisableUserChange", true.into()),
        ],
    ));
}

#[test]
fn per_name_settings() {
    let p = gen(with(
        daemon(),
        vec![
            ("nice", Value::Int(5)),
            ("directory", "/srv/web app".into()),
            ("umask", "027".into()),
            ("fib", "1".into()),
            ("oomProtect", "YES".into()),
            ("reloadSignal", "USR1".into()),
            ("stopSignal", "SIGINT".into()),
        ],
    ));
    has(&p, "webapp_nice=5");
    // Nice: rc.subr runs sh -c "…", so the encoded words are escaped for
    // double quotes.
    has(&p, "webapp_chdir=''\\''/srv/web app'\\'''");
    has(&p, "umask 027");
    has(&p, "webapp_fib=1");
    has(&p, "webapp_oomprotect=YES");
    has(&p, "sig_reload=USR1");
    has(&p, "sig_stop=INT");
    let e = err(with(daemon(), vec![("oomProtect", "yes".into())]));
    assert!(e.contains("'oomProtect'"), "{e}");
    let e = err(with(daemon(), vec![("stopSignal", "-9; rm".into())]));
    assert!(e.contains("'stopSignal'"), "{e}");
}

#[test]
fn commands_hooks_and_extra_commands() {
    let p = gen(with(
        daemon(),
        vec![(
            "commands",
            attrs([
                (
                    "start",
                    attrs([
                        ("pre", Value::from("mkdir -p /var/web\necho ready")),
                        ("post", Value::from("")),
                    ]),
                ),
                (
                    "backup",
                    attrs([("implementation", Value::from("echo backup"))]),
                ),
            ]),
        )],
    ));
    has(&p, "extra_commands=\"reload backup\"");
    has(&p, "start_precmd=webapp_prestart");
    has(&p, "start_postcmd=webapp_poststart");
    has(&p, "backup_cmd=webapp_backup");
    assert!(
        text(&p).contains("\nwebapp_prestart()\n{\nmkdir -p /var/web\necho ready\n}\n"),
        "{}",
        text(&p)
    );
    // An empty body is a no-op, not a syntax error.
    assert!(text(&p).contains("\nwebapp_poststart()\n{\n:\n}\n"));
    let e = err(with(
        daemon(),
        vec![(
            "commands",
            attrs([("backup", attrs([("pre", Value::from("x"))]))]),
        )],
    ));
    assert!(e.contains("commands.backup.implementation"), "{e}");
    let e = err(with(
        daemon(),
        vec![(
            "commands",
            attrs([("start", attrs([("prep", Value::from("x"))]))]),
        )],
    ));
    assert!(
        e.contains("commands.start") && e.contains("did you mean 'pre'"),
        "{e}"
    );
    let e = err(with(
        daemon(),
        vec![(
            "commands",
            attrs([("a b", attrs([("pre", Value::from("x"))]))]),
        )],
    ));
    assert!(e.contains("commands.a b"), "{e}");
}

#[test]
fn header_lines() {
    let p = gen(with(
        daemon(),
        vec![
            (
                "dependencies",
                Value::List(vec![attrs([("name", Value::from("db"))])]),
            ),
            ("requires", vec!["NETWORKING"].into()),
            ("provides", vec!["webapp", "web"].into()),
            ("keywords", vec!["shutdown"].into()),
            ("flexibleParameters", true.into()),
        ],
    ));
    has(&p, "# PROVIDE: webapp web");
    has(&p, "# REQUIRE: db NETWORKING");
    has(&p, "# KEYWORD: shutdown");
    has(&p, "run_rc_command \"$@\"");
    assert_eq!(p.manifest.dependencies, ["db"]);
    let e = err(with(daemon(), vec![("keywords", vec!["a b"].into())]));
    assert!(e.contains("keywords[0]"), "{e}");
    let e = err(with(daemon(), vec![("dependencies", vec!["db"].into())]));
    assert!(
        e.contains("dependencies[0]") && e.contains("bsdrc process package"),
        "{e}"
    );
}

#[test]
fn required_lists() {
    let p = gen(with(
        daemon(),
        vec![
            ("requiredDirs", vec!["/var/db", "/var/x"].into()),
            ("requiredFiles", vec!["/etc/web.conf"].into()),
            ("requiredVars", vec!["db_enabled"].into()),
            ("requiredModules", vec!["if_tap"].into()),
        ],
    ));
    has(&p, "required_dirs='/var/db /var/x'");
    has(&p, "required_files=/etc/web.conf");
    has(&p, "required_vars=db_enabled");
    has(&p, "required_modules=if_tap");
    let e = err(with(daemon(), vec![("requiredVars", vec!["a-b"].into())]));
    assert!(e.contains("requiredVars[0]"), "{e}");
}

#[test]
fn environment_and_path_are_exported() {
    let p = gen(with(
        daemon(),
        vec![
            (
                "environment",
                attrs([
                    ("PORT", Value::Int(8080)),
                    ("MSG", Value::from("it's $(x)")),
                ]),
            ),
            ("path", vec!["/nix/store/a-coreutils"].into()),
        ],
    ));
    has(&p, "export MSG='it'\\''s $(x)'");
    has(&p, "export PATH=/nix/store/a-coreutils/bin:\"$PATH\"");
    has(&p, "export PORT=8080");
    let e = err(with(
        daemon(),
        vec![("environment", attrs([("A-B", Value::from("x"))]))],
    ));
    assert!(e.contains("environment.A-B"), "{e}");
}

#[test]
fn unknown_keys_and_bad_values() {
    let e = err(with(daemon(), vec![("comandArgs", vec!["x"].into())]));
    assert!(e.contains("did you mean 'commandArgs'"), "{e}");
    let e = err(vec![("name", "w".into()), ("command", "/a b/x".into())]);
    assert!(e.contains("'command'") && e.contains("unquoted"), "{e}");
    let e = err(with(foreground(), vec![("daemon", "/x y/daemon".into())]));
    assert!(e.contains("'daemon'"), "{e}");
    let e = err(with(daemon(), vec![("nice", Value::Int(40))]));
    assert!(e.contains("'nice'"), "{e}");
    let e = err(with(daemon(), vec![("fib", "1\n2".into())]));
    assert!(e.contains("'fib'"), "{e}");
}

#[test]
fn composition_keys_are_accepted() {
    let mut pairs = daemon();
    pairs.extend([
        ("runtimeDir", Value::from("/r")),
        ("logDir", Value::from("/l")),
        ("tmpDir", Value::from("/t")),
        ("forceDisableUserChange", Value::from(true)),
        ("ids", attrs::<_, &str>([])),
        ("shell", Value::from("/bin/bash")),
        ("foregroundProxy", Value::from("/x proxy")),
        ("callingUser", Value::from("me")),
        ("callingGroup", Value::from("us")),
        ("bsdDaemon", Value::from("/usr/sbin/daemon")),
        ("postInstall", Value::from("true")),
    ]);
    let p = gen(pairs);
    assert_eq!(lines(&p)[0], "#!/bin/bash");
    // Every composition key is accepted (all were passed above).
    assert_eq!(COMPOSITION_KEYS.len(), 11);
}

#[test]
fn daemon8_path_under_both_names() {
    let p = gen(with(
        foreground(),
        vec![("bsdDaemon", "/opt/daemon".into())],
    ));
    has(&p, "command=/opt/daemon");
    // `daemon` (foreground() sets it) when bsdDaemon is absent.
    let p = gen(foreground());
    has(&p, "command=/usr/sbin/daemon");
    let e = err(with(
        foreground(),
        vec![("bsdDaemon", "/x y/daemon".into())],
    ));
    assert!(e.contains("'bsdDaemon'"), "{e}");
}

#[test]
fn create_managed_process_keeps_daemon_for_the_process() {
    // The composition's daemon(8) must not be mistaken for the process's
    // daemon executable (and the reverse).
    let p = managed(vec![
        ("instanceName", "w".into()),
        ("foregroundProcess", WEBAPP.into()),
        ("bsdDaemon", "/opt/daemon".into()),
    ]);
    has(&p, "command=/opt/daemon");
    has(&p, &format!("procname={WEBAPP}"));
}

#[test]
fn credentials_become_dysnomia_support() {
    let creds = attrs([
        ("groups", attrs([("web", attrs::<_, &str>([]))])),
        (
            "users",
            attrs([("web", attrs([("group", Value::from("web"))]))]),
        ),
    ]);
    let p = gen(with(daemon(), vec![("credentials", creds.clone())]));
    let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "etc/rc.d/webapp",
            "dysnomia-support/groups/web",
            "dysnomia-support/users/web"
        ]
    );
    let p = gen(with(
        daemon(),
        vec![
            ("credentials", creds),
            ("forceDisableUserChange", true.into()),
        ],
    ));
    assert_eq!(p.files.len(), 1);
}

#[test]
fn manifest_entry() {
    let p = gen(with(
        daemon(),
        vec![("description", "Web app".into()), ("user", "web".into())],
    ));
    let m = &p.manifest;
    assert_eq!(m.description, "Web app");
    assert_eq!(m.user.as_deref(), Some("web"));
    assert_eq!(
        m.backend,
        Backend::Bsdrc {
            script: "etc/rc.d/webapp".into()
        }
    );
    assert!(!m.revision.is_empty());
    has(&p, "desc='Web app'");
}

fn managed(pairs: Vec<(&str, Value)>) -> PackageSpec {
    let mut all = vec![
        ("processManager", Value::from("bsdrc")),
        ("rcSubr", Value::from(RC_SUBR)),
        ("bsdDaemon", Value::from("/usr/sbin/daemon")),
        ("runtimeDir", Value::from("/run")),
        ("tmpDir", Value::from("/tmp")),
    ];
    all.extend(pairs);
    agnostic::create_managed_process(&attrs(all)).unwrap()
}

#[test]
fn translate_prefers_the_daemon() {
    let p = managed(vec![
        ("instanceName", "webapp".into()),
        ("process", WEBAPP.into()),
        ("daemonExtraArgs", vec!["-D"].into()),
        ("initialize", "mkdir -p /var/web".into()),
        ("description", "The web app".into()),
        ("nice", Value::Int(3)),
        ("directory", "/srv".into()),
        ("umask", "022".into()),
    ]);
    has(&p, &format!("command={WEBAPP}"));
    has(&p, "command_args=-D");
    has(&p, "pidfile=/run/webapp.pid");
    has(&p, "start_precmd=webapp_prestart");
    has(&p, "desc='The web app'");
    has(&p, "webapp_nice=3");
    has(&p, "webapp_chdir=/srv");
    has(&p, "umask 022");
    assert!(text(&p).contains("webapp_prestart()\n{\nmkdir -p /var/web\n}\n"));
}

#[test]
fn translate_foreground_and_pid_file_rule() {
    let p = managed(vec![
        ("name", "web".into()),
        ("foregroundProcess", WEBAPP.into()),
        ("user", "web".into()),
    ]);
    has(&p, "command=/usr/sbin/daemon");
    has(&p, "pidfile=/tmp/webapp.pid");
    has(
        &p,
        &format!("command_args='-p /tmp/webapp.pid -o /tmp/nixproc-web.log -u web -- {WEBAPP}'"),
    );
    // overrides reach the generator.
    let p = managed(vec![
        ("instanceName", "w".into()),
        ("process", WEBAPP.into()),
        (
            "overrides",
            attrs([("bsdrc", attrs([("rcvar", Value::from("enable"))]))]),
        ),
    ]);
    has(&p, "rcvar=w_enable");
}
