use super::*;
use crate::value::attrs;

const INIT: &str = "/nix/store/00000000000000000000000000000000-init-functions";
const HELLO: &str = "/nix/store/11111111111111111111111111111111-hello/bin/hello";

fn gen_with(pairs: Vec<(&str, Value)>) -> Result<PackageSpec> {
    let mut all = vec![("initFunctions", Value::from(INIT))];
    all.extend(pairs);
    create_systemv_init_script(&attrs(all))
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

/// The lines of the `case` branch of `activity`, indentation removed.
fn branch(p: &PackageSpec, activity: &str) -> Vec<String> {
    let t = text(p);
    let label = format!("\n  {activity})\n");
    let start = t
        .find(&label)
        .unwrap_or_else(|| panic!("no {activity} in\n{t}"))
        + label.len();
    let end = start + t[start..].find(";;").unwrap();
    t[start..end]
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn labels(p: &PackageSpec) -> Vec<String> {
    text(p)
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(')'))
        .map(|l| l.trim().trim_end_matches(')').to_string())
        .collect()
}

fn links(p: &PackageSpec) -> Vec<String> {
    p.links.iter().map(|l| l.path.clone()).collect()
}

fn dep(name: &str, seq: i64) -> Value {
    attrs([("name", Value::from(name)), ("sequence", Value::Int(seq))])
}

fn daemon() -> Vec<(&'static str, Value)> {
    vec![("instanceName", "hello".into()), ("process", HELLO.into())]
}

fn with(
    mut base: Vec<(&'static str, Value)>,
    more: Vec<(&'static str, Value)>,
) -> Vec<(&'static str, Value)> {
    base.extend(more);
    base
}

// --- sequence numbers ----------------------------------------------------

#[test]
fn no_dependencies_start_at_min_sequence() {
    let p = gen(with(daemon(), vec![("runlevels", vec![3i64].into())]));
    assert_eq!(p.passthru["sequence"], Value::Int(0));
    assert!(links(&p).contains(&"etc/rc.d/rc3.d/S00hello".to_string()));
    assert!(links(&p).contains(&"etc/rc.d/rc0.d/K99hello".to_string()));
    assert!(p.links.iter().all(|l| l.target == "../init.d/hello"));
}

#[test]
fn sequence_follows_highest_dependency() {
    let p = gen(with(
        daemon(),
        vec![
            ("runlevels", vec![3i64].into()),
            ("dependencies", Value::List(vec![dep("a", 3), dep("b", 7)])),
        ],
    ));
    assert_eq!(p.passthru["sequence"], Value::Int(8));
    assert_eq!(
        links(&p),
        [
            "etc/rc.d/rc0.d/K91hello",
            "etc/rc.d/rc1.d/K91hello",
            "etc/rc.d/rc2.d/K91hello",
            "etc/rc.d/rc3.d/S08hello",
            "etc/rc.d/rc4.d/K91hello",
            "etc/rc.d/rc5.d/K91hello",
            "etc/rc.d/rc6.d/K91hello",
        ]
    );
    let Backend::Sysvinit { sequence, .. } = p.manifest.backend else {
        panic!("not a sysvinit entry")
    };
    assert_eq!(sequence, 8);
}

#[test]
fn custom_sequence_range() {
    let p = gen(with(
        daemon(),
        vec![
            ("runlevels", vec![3i64].into()),
            ("minSequence", Value::Int(10)),
            ("maxSequence", Value::Int(90)),
        ],
    ));
    assert!(links(&p).contains(&"etc/rc.d/rc3.d/S10hello".to_string()));
    assert!(links(&p).contains(&"etc/rc.d/rc4.d/K90hello".to_string()));
    // A dependency below minSequence does not pull the start below it.
    let p = gen(with(
        daemon(),
        vec![
            ("minSequence", Value::Int(10)),
            ("dependencies", Value::List(vec![dep("a", 2)])),
        ],
    ));
    assert_eq!(p.passthru["sequence"], Value::Int(10));
    assert!(links(&p).contains(&"etc/rc.d/rc0.d/K99hello".to_string()));
}

#[test]
fn sequence_above_max_is_an_error() {
    assert_eq!(
        err(with(
            daemon(),
            vec![("dependencies", Value::List(vec![dep("a", 99)]))]
        )),
        "attribute 'dependencies': the start sequence would be 100, above maxSequence 99 \
         (the dependency chain is too long for the sequence range)"
    );
    assert!(err(with(
        daemon(),
        vec![
            ("maxSequence", Value::Int(5)),
            ("dependencies", Value::List(vec![dep("a", 5)]))
        ]
    ))
    .contains("the start sequence would be 6, above maxSequence 5"));
}

// --- runlevels -----------------------------------------------------------

#[test]
fn runlevels_derive_stop_levels() {
    let p = gen(with(
        daemon(),
        vec![("runlevels", vec![5i64, 3, 4, 4].into())],
    ));
    assert!(text(&p).contains("# Default-Start:     3 4 5\n# Default-Stop:      0 1 2 6\n"));
    let Backend::Sysvinit {
        start_runlevels, ..
    } = &p.manifest.backend
    else {
        panic!("not a sysvinit entry")
    };
    assert_eq!(start_runlevels, &[3, 4, 5]);
    assert_eq!(
        links(&p),
        [
            "etc/rc.d/rc0.d/K99hello",
            "etc/rc.d/rc1.d/K99hello",
            "etc/rc.d/rc2.d/K99hello",
            "etc/rc.d/rc3.d/S00hello",
            "etc/rc.d/rc4.d/S00hello",
            "etc/rc.d/rc5.d/S00hello",
            "etc/rc.d/rc6.d/K99hello",
        ]
    );
}

#[test]
fn no_runlevels_at_all_defaults_to_2345() {
    let p = gen(daemon());
    assert!(text(&p).contains("# Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n"));
    let Backend::Sysvinit {
        start_runlevels, ..
    } = &p.manifest.backend
    else {
        panic!("not a sysvinit entry")
    };
    assert_eq!(start_runlevels, &[2, 3, 4, 5]);
    assert_eq!(p.links.len(), 7);
}

#[test]
fn default_start_and_stop_are_used_when_runlevels_is_empty() {
    let p = gen(with(
        daemon(),
        vec![
            ("defaultStart", vec![4i64, 3].into()),
            ("defaultStop", vec![0i64].into()),
        ],
    ));
    assert!(text(&p).contains("# Default-Start:     3 4\n# Default-Stop:      0\n"));
    assert_eq!(
        links(&p),
        [
            "etc/rc.d/rc0.d/K99hello",
            "etc/rc.d/rc3.d/S00hello",
            "etc/rc.d/rc4.d/S00hello"
        ]
    );
    // Only stop levels: explicitly never started.
    let p = gen(with(daemon(), vec![("defaultStop", vec![0i64, 6].into())]));
    assert!(!text(&p).contains("Default-Start"));
    assert_eq!(
        links(&p),
        ["etc/rc.d/rc0.d/K99hello", "etc/rc.d/rc6.d/K99hello"]
    );
    let Backend::Sysvinit {
        start_runlevels, ..
    } = &p.manifest.backend
    else {
        panic!("not a sysvinit entry")
    };
    assert!(start_runlevels.is_empty());
    // runlevels wins over defaultStart/defaultStop.
    let p = gen(with(
        daemon(),
        vec![
            ("runlevels", vec![2i64].into()),
            ("defaultStart", vec![4i64].into()),
        ],
    ));
    assert!(text(&p).contains("# Default-Start:     2\n"));
}

#[test]
fn supported_runlevels_bound_everything() {
    let p = gen(with(
        daemon(),
        vec![
            ("supportedRunlevels", vec![3i64, 1, 2].into()),
            ("runlevels", vec![2i64].into()),
        ],
    ));
    assert!(text(&p).contains("# Default-Start:     2\n# Default-Stop:      1 3\n"));
    assert_eq!(p.links.len(), 3);
    // The default 2 3 4 5 is cut down to what is supported.
    let p = gen(with(
        daemon(),
        vec![("supportedRunlevels", vec![0i64, 3, 6].into())],
    ));
    assert!(text(&p).contains("# Default-Start:     3\n# Default-Stop:      0 6\n"));
}

#[test]
fn runlevel_errors() {
    assert_eq!(
        err(with(daemon(), vec![("runlevels", vec![3i64, 7].into())])),
        "attribute 'runlevels[1]': runlevel 7 is not one of the supported runlevels 0 1 2 3 4 5 6"
    );
    assert_eq!(
        err(with(daemon(), vec![("runlevels", vec![-1i64].into())])),
        "attribute 'runlevels[0]': runlevel -1 is not between 0 and 9"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("runlevels", Value::List(vec!["3".into()]))]
        )),
        "attribute 'runlevels[0]' must be an integer, but it is string"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![
                ("defaultStart", vec![3i64].into()),
                ("defaultStop", vec![3i64].into())
            ]
        )),
        "attribute 'defaultStop': runlevel 3 is in both defaultStart and defaultStop"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("supportedRunlevels", vec![10i64].into())]
        )),
        "attribute 'supportedRunlevels[0]': runlevel 10 is not between 0 and 9"
    );
}

// --- PID files, log files, users ----------------------------------------

#[test]
fn pid_file_in_runtime_dir_without_user() {
    let p = gen(with(daemon(), vec![("runtimeDir", "/run/".into())]));
    assert_eq!(
        branch(&p, "start")[1],
        format!("start_daemon -f -p /run/hello.pid {HELLO}")
    );
    assert_eq!(
        branch(&p, "stop")[1],
        format!("killproc -p /run/hello.pid {HELLO}")
    );
    assert_eq!(
        branch(&p, "reload")[1],
        format!("killproc -p /run/hello.pid {HELLO} -HUP")
    );
    assert_eq!(
        branch(&p, "status"),
        [format!("statusproc -p /run/hello.pid {HELLO}")]
    );
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/run/hello.pid"));
    assert_eq!(p.manifest.log_file, None);
    assert_eq!(p.manifest.user, None);
}

#[test]
fn pid_file_in_tmp_dir_with_user() {
    let p = gen(with(daemon(), vec![("user", "hello".into())]));
    assert_eq!(
        branch(&p, "start")[1],
        format!("start_daemon -f -p /tmp/hello.pid -u hello {HELLO}")
    );
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/tmp/hello.pid"));
    assert_eq!(p.manifest.user.as_deref(), Some("hello"));
}

#[test]
fn force_disable_user_change_drops_the_user_but_keeps_the_pid_dir() {
    let p = gen(with(
        daemon(),
        vec![
            ("user", "hello".into()),
            ("forceDisableUserChange", true.into()),
        ],
    ));
    assert_eq!(
        branch(&p, "start")[1],
        format!("start_daemon -f -p /tmp/hello.pid {HELLO}")
    );
    assert_eq!(p.manifest.user, None);
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/tmp/hello.pid"));
}

#[test]
fn explicit_pid_file_wins_and_daemon_without_one_has_no_p() {
    let p = gen(with(daemon(), vec![("pidFile", "/srv/h.pid".into())]));
    assert_eq!(
        branch(&p, "start")[1],
        format!("start_daemon -f -p /srv/h.pid {HELLO}")
    );
    let p = gen(vec![("name", "hello".into()), ("process", HELLO.into())]);
    assert_eq!(branch(&p, "start")[1], format!("start_daemon {HELLO}"));
    assert_eq!(branch(&p, "stop")[1], format!("killproc {HELLO}"));
    assert_eq!(branch(&p, "status"), [format!("statusproc {HELLO}")]);
    assert_eq!(p.manifest.pid_file, None);
}

fn foreground() -> Vec<(&'static str, Value)> {
    with(
        daemon(),
        vec![
            ("processIsDaemon", false.into()),
            (
                "startProcessAsDaemon",
                "/nix/store/x-nixproc daemonize".into(),
            ),
        ],
    )
}

#[test]
fn foreground_process_is_daemonized_with_log() {
    let p = gen(with(foreground(), vec![("args", vec!["-v"].into())]));
    assert_eq!(
        branch(&p, "start")[1],
        format!(
            "/nix/store/x-nixproc daemonize --output /var/log/nixproc-hello.log \
             --pidfile /var/run/hello.pid -- {HELLO} -v"
        )
    );
    assert_eq!(
        branch(&p, "stop")[1],
        format!("killproc -p /var/run/hello.pid {HELLO}")
    );
    assert_eq!(
        p.manifest.log_file.as_deref(),
        Some("/var/log/nixproc-hello.log")
    );
    assert_eq!(p.manifest.pid_file.as_deref(), Some("/var/run/hello.pid"));
}

#[test]
fn foreground_log_and_pid_with_user() {
    let p = gen(with(
        foreground(),
        vec![("user", "hello".into()), ("nice", Value::Int(5))],
    ));
    assert_eq!(
        branch(&p, "start")[1],
        format!(
            "/nix/store/x-nixproc daemonize --output /tmp/nixproc-hello.log \
             --pidfile /tmp/hello.pid --user hello --nice 5 -- {HELLO}"
        )
    );
    assert_eq!(
        p.manifest.log_file.as_deref(),
        Some("/tmp/nixproc-hello.log")
    );

    // forceDisableUserChange: no --user, log back in logDir, PID stays in tmpDir.
    let p = gen(with(
        foreground(),
        vec![
            ("user", "hello".into()),
            ("forceDisableUserChange", true.into()),
            ("logDir", "/l".into()),
        ],
    ));
    assert_eq!(
        branch(&p, "start")[1],
        format!(
            "/nix/store/x-nixproc daemonize --output /l/nixproc-hello.log \
             --pidfile /tmp/hello.pid -- {HELLO}"
        )
    );
    assert_eq!(p.manifest.user, None);
}

#[test]
fn foreground_without_logging_or_instance_name() {
    let p = gen(with(
        foreground(),
        vec![("enableDaemonOutputLogging", false.into())],
    ));
    assert_eq!(
        branch(&p, "start")[1],
        format!("/nix/store/x-nixproc daemonize --pidfile /var/run/hello.pid -- {HELLO}")
    );
    assert_eq!(p.manifest.log_file, None);

    let p = gen(vec![
        ("name", "hi".into()),
        ("process", HELLO.into()),
        ("processIsDaemon", false.into()),
        ("startProcessAsDaemon", "daemonize".into()),
    ]);
    assert_eq!(
        branch(&p, "start")[1],
        format!(
            "daemonize --output /var/log/nixproc-hi.log --pidfile /var/run/hello.pid -- {HELLO}"
        )
    );
    assert_eq!(
        branch(&p, "status"),
        [format!("statusproc -p /var/run/hello.pid {HELLO}")]
    );
}

#[test]
fn foreground_needs_a_daemonizer() {
    assert_eq!(
        err(with(daemon(), vec![("processIsDaemon", false.into())])),
        "attribute 'startProcessAsDaemon' is required: a foreground process \
         (processIsDaemon = false) must be daemonized by it"
    );
}

#[test]
fn nice_is_a_string_or_an_int() {
    let p = gen(with(daemon(), vec![("nice", "-5".into())]));
    assert_eq!(
        branch(&p, "start")[1],
        format!("start_daemon -f -p /var/run/hello.pid -n -5 {HELLO}")
    );
    let p = gen(with(daemon(), vec![("nice", Value::Int(19))]));
    assert!(branch(&p, "start")[1].contains(" -n 19 "));
    for bad in [Value::Int(20), Value::Int(-21), "x".into(), "1; rm".into()] {
        let shown = match &bad {
            Value::Int(i) => format!("\"{i}\""),
            v => format!("{:?}", v.as_str().unwrap()),
        };
        assert_eq!(
            err(with(daemon(), vec![("nice", bad)])),
            format!("attribute 'nice': must be an integer between -20 and 19, but it is {shown}")
        );
    }
    assert_eq!(
        err(with(daemon(), vec![("nice", Value::List(vec![]))])),
        "attribute 'nice' must be a string or a number, but it is list"
    );
}

#[test]
fn initialize_then_directory_then_start() {
    let p = gen(with(
        daemon(),
        vec![
            ("initialize", "mkdir -p /var/lib/hello\n".into()),
            ("directory", "/var/lib/my dir".into()),
            ("args", Value::List(vec!["--port".into(), Value::Int(80)])),
        ],
    ));
    assert_eq!(
        branch(&p, "start"),
        [
            "log_info_msg 'Starting hello...'".to_string(),
            "mkdir -p /var/lib/hello".into(),
            "cd '/var/lib/my dir'".into(),
            format!("start_daemon -f -p /var/run/hello.pid {HELLO} --port 80"),
            "evaluate_retval".into(),
        ]
    );
}

#[test]
fn composition_commands_are_used() {
    let p = gen(with(
        daemon(),
        vec![
            ("startDaemon", "my_start".into()),
            ("stopDaemon", "my_stop".into()),
            ("reloadDaemon", "my_reload".into()),
            ("statusCommand", "my_status".into()),
            ("evaluateCommand", "my_eval".into()),
            ("reloadSignal", "-USR1".into()),
            ("restartActivity", "my_restart".into()),
            ("description", "Hello server".into()),
        ],
    ));
    assert_eq!(
        branch(&p, "start"),
        [
            "log_info_msg 'Starting Hello server...'".to_string(),
            format!("my_start -f -p /var/run/hello.pid {HELLO}"),
            "my_eval".into()
        ]
    );
    assert_eq!(
        branch(&p, "stop")[1],
        format!("my_stop -p /var/run/hello.pid {HELLO}")
    );
    assert_eq!(
        branch(&p, "reload")[1],
        format!("my_reload -p /var/run/hello.pid {HELLO} -USR1")
    );
    assert_eq!(
        branch(&p, "status"),
        [format!("my_status -p /var/run/hello.pid {HELLO}")]
    );
    assert_eq!(branch(&p, "restart"), ["my_restart"]);
    assert!(text(&p).contains("# Description:       Hello server\n"));
    assert_eq!(p.manifest.description, "Hello server");
}

// --- activities ----------------------------------------------------------

#[test]
fn activity_order_and_usage() {
    let p = gen(with(
        daemon(),
        vec![
            (
                "activities",
                attrs([("zap", "echo zap".into()), ("backup", "echo b".into())]),
            ),
            (
                "instructions",
                attrs([(
                    "migrate",
                    attrs([
                        ("activity", "Migrating".into()),
                        ("instruction", "do_migrate".into()),
                    ]),
                )]),
            ),
        ],
    ));
    assert_eq!(
        labels(&p),
        ["start", "stop", "reload", "restart", "status", "backup", "migrate", "zap", "*"]
    );
}

#[test]
fn usage_lists_final_activities() {
    let p = gen(with(
        daemon(),
        vec![
            ("activities", attrs([("zap", "echo zap".into())])),
            ("removeActivities", vec!["reload"].into()),
        ],
    ));
    assert_eq!(
        branch(&p, "*"),
        [
            "echo \"Usage: $0 {start|stop|restart|status|zap}\"",
            "exit 1"
        ]
    );
    assert_eq!(
        branch(&p, "restart"),
        ["\"$0\" stop", "sleep 1", "\"$0\" start"]
    );
}

#[test]
fn precedence_instructions_defaults_activities() {
    let p = gen(with(
        daemon(),
        vec![
            (
                "instructions",
                attrs([
                    (
                        "start",
                        attrs([
                            ("activity", "Launching".into()),
                            ("instruction", "my_start".into()),
                        ]),
                    ),
                    (
                        // a default activity (status) beats an instruction
                        "status",
                        attrs([
                            ("activity", "Checking".into()),
                            ("instruction", "my_status".into()),
                        ]),
                    ),
                ]),
            ),
            (
                "activities",
                attrs([("stop", "raw_stop".into()), ("*", "echo custom".into())]),
            ),
        ],
    ));
    assert_eq!(
        branch(&p, "start"),
        [
            "log_info_msg 'Launching hello...'",
            "my_start",
            "evaluate_retval"
        ]
    );
    assert_eq!(
        branch(&p, "status"),
        [format!("statusproc -p /var/run/hello.pid {HELLO}")]
    );
    assert_eq!(branch(&p, "stop"), ["raw_stop"]);
    assert_eq!(branch(&p, "*"), ["echo custom"]);
}

#[test]
fn remove_activities_deletes_any_activity() {
    let p = gen(with(
        daemon(),
        vec![
            ("activities", attrs([("extra", "x".into())])),
            (
                "removeActivities",
                vec!["reload", "status", "extra", "*", "nope"].into(),
            ),
        ],
    ));
    assert_eq!(labels(&p), ["start", "stop", "restart"]);
}

#[test]
fn only_custom_activities_without_process() {
    let p = gen(vec![
        ("name", "setup".into()),
        ("activities", attrs([("start", "echo hi".into())])),
    ]);
    assert_eq!(labels(&p), ["start", "*"]);
    assert_eq!(branch(&p, "*")[0], "echo \"Usage: $0 {start}\"");
    assert_eq!(p.manifest.pid_file, None);
}

#[test]
fn multi_line_code_is_not_reindented() {
    let code = "cat <<EOF\n  a\nEOF\necho 'x\n y'\n";
    let p = gen(vec![
        ("name", "s".into()),
        ("activities", attrs([("start", code.into())])),
        ("globalInstructions", "g1\ng2\n\n".into()),
    ]);
    assert!(text(&p).contains("  start)\n    cat <<EOF\n  a\nEOF\necho 'x\n y'\n    ;;\n"));
    assert!(text(&p).contains("\ng1\ng2\n\n"));
}

// --- environment ---------------------------------------------------------

#[test]
fn path_and_environment_are_exported_sorted() {
    let p = gen(with(
        daemon(),
        vec![
            (
                "path",
                vec!["/nix/store/a-coreutils", "/nix/store/b-my tools/"].into(),
            ),
            (
                "environment",
                attrs([
                    ("PORT", Value::Int(7000)),
                    ("A_MSG", "hi there".into()),
                    ("Z", "".into()),
                ]),
            ),
            ("umask", "022".into()),
        ],
    ));
    assert!(text(&p).contains(&format!(
        ". {INIT}\n\numask 022\nexport A_MSG='hi there'\n\
         export PATH='/nix/store/a-coreutils/bin:/nix/store/b-my tools/bin':\"$PATH\"\n\
         export PORT=7000\nexport Z=''\n\ncase"
    )));
}

#[test]
fn explicit_path_overrides_generated_path() {
    let p = gen(with(
        daemon(),
        vec![
            ("path", vec!["/nix/store/a-coreutils"].into()),
            ("environment", attrs([("PATH", "/opt/bin".into())])),
        ],
    ));
    assert!(text(&p).contains("export PATH=/opt/bin:\"$PATH\"\n"));
    assert!(!text(&p).contains("coreutils"));
}

#[test]
fn no_environment_no_exports() {
    let p = gen(daemon());
    assert!(!text(&p).contains("export"));
    assert!(text(&p).contains(&format!("END INIT INFO\n\n. {INIT}\n\ncase \"$1\" in\n")));
}

#[test]
fn initial_instructions_replace_sourcing() {
    let p = create_systemv_init_script(&attrs(with(
        daemon(),
        vec![("initialInstructions", "source_me".into())],
    )))
    .unwrap();
    assert!(text(&p).contains("END INIT INFO\n\nsource_me\n\ncase"));
    let p = gen(with(daemon(), vec![("initFunctions", "/my init".into())]));
    assert!(text(&p).contains("\n. '/my init'\n"));
    assert_eq!(
        create_systemv_init_script(&attrs(daemon()))
            .unwrap_err()
            .to_string(),
        "attribute 'initFunctions' is required: the init-functions file is needed unless \
         initialInstructions is given"
    );
}

// --- header --------------------------------------------------------------

#[test]
fn header_with_dependencies_and_shell() {
    let p = gen(with(
        daemon(),
        vec![
            ("shell", "/nix/store/s-bash/bin/sh".into()),
            (
                "dependencies",
                Value::List(vec![dep("webapp1", 0), dep("webapp2", 2)]),
            ),
        ],
    ));
    assert!(text(&p).starts_with(
        "#!/nix/store/s-bash/bin/sh\n\n### BEGIN INIT INFO\n# Provides:          hello\n"
    ));
    assert!(text(&p)
        .contains("# Should-Start:      webapp1 webapp2\n# Should-Stop:       webapp1 webapp2\n"));
    assert_eq!(p.manifest.dependencies, ["webapp1", "webapp2"]);
}

#[test]
fn hostile_description_stays_in_the_comment() {
    let desc = "evil\n$(touch /tmp/pwned)\n## END INIT INFO";
    let p = gen(with(daemon(), vec![("description", desc.into())]));
    assert!(text(&p).contains(
        "# Description:       evil\n#  $(touch /tmp/pwned)\n#  ## END INIT INFO\n### END INIT INFO\n"
    ));
    assert_eq!(branch(&p, "start")[0], "log_info_msg 'Starting evil");
    assert!(text(&p)
        .contains("log_info_msg 'Starting evil\n$(touch /tmp/pwned)\n## END INIT INFO...'\n"));
}

// --- package -------------------------------------------------------------

#[test]
fn package_layout_and_manifest() {
    let p = gen(with(
        daemon(),
        vec![
            ("user", "hello".into()),
            (
                "credentials",
                attrs([
                    ("groups", attrs([("hello", attrs::<_, &str>([]))])),
                    (
                        "users",
                        attrs([(
                            "hello",
                            attrs([("group", "hello".into()), ("homeDir", "/h".into())]),
                        )]),
                    ),
                ]),
            ),
            (
                "ids",
                attrs([
                    ("uids", attrs([("hello", Value::Int(1000))])),
                    ("gids", attrs([("hello", Value::Int(2000))])),
                ]),
            ),
            ("postInstall", "touch $out/x".into()),
            ("callingUser", "me".into()),
            ("callingGroup", "us".into()),
        ],
    ));
    assert_eq!(p.name, "hello");
    let files: Vec<(&str, u32)> = p.files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
    assert_eq!(
        files,
        [
            ("etc/rc.d/init.d/hello", 0o555),
            ("dysnomia-support/groups/hello", 0o444),
            ("dysnomia-support/users/hello", 0o444),
        ]
    );
    assert_eq!(p.files[1].text, "gid=2000\n");
    assert_eq!(p.files[2].text, "uid=1000\ngroup=hello\nhomeDir=/h\n");
    assert_eq!(p.manifest.key, "");
    assert_eq!(p.manifest.name, "hello");
    assert_eq!(p.manifest.revision.len(), 32);
    assert_eq!(
        p.manifest.backend,
        Backend::Sysvinit {
            script: "etc/rc.d/init.d/hello".into(),
            start_runlevels: vec![2, 3, 4, 5],
            sequence: 0,
        }
    );

    // forceDisableUserChange reaches the credentials too.
    let p = gen(with(
        daemon(),
        vec![
            ("forceDisableUserChange", true.into()),
            (
                "credentials",
                attrs([("groups", attrs([("hello", attrs::<_, &str>([]))]))]),
            ),
        ],
    ));
    assert_eq!(p.files.len(), 1);
}

#[test]
fn revision_changes_with_content() {
    let a = gen(daemon());
    let b = gen(with(daemon(), vec![("args", vec!["-x"].into())]));
    assert_ne!(a.manifest.revision, b.manifest.revision);
    assert_eq!(a.manifest.revision, gen(daemon()).manifest.revision);
}

// --- validation ----------------------------------------------------------

#[test]
fn name_is_required_and_validated() {
    assert_eq!(
        err(vec![("process", HELLO.into())]),
        "attribute 'name' is required: no process name was specified or can be inferred \
         from instanceName"
    );
    for bad in ["", ".", "..", "a/b", "a b", "a\nb"] {
        assert_eq!(
            err(vec![("name", bad.into())]),
            format!(
                "attribute 'name': {bad:?} is not a valid process name (it must be a file name: \
                 non-empty, not '.' or '..', without '/', whitespace or control characters)"
            )
        );
    }
    assert!(err(vec![("instanceName", "a/b".into())]).starts_with("attribute 'instanceName': "));
    assert_eq!(
        err(vec![("name", Value::Int(1))]),
        "attribute 'name' must be a string, but it is int"
    );
    // name wins over instanceName
    let p = gen(vec![("name", "n".into()), ("instanceName", "i".into())]);
    assert_eq!(p.name, "n");
}

#[test]
fn unknown_parameters_are_rejected() {
    assert_eq!(
        err(with(daemon(), vec![("runlevel", vec![3i64].into())])),
        "unknown parameter 'runlevel' (did you mean 'runlevels'?)"
    );
    assert_eq!(
        err(with(daemon(), vec![("stdenv", Value::Null)])),
        "unknown parameter 'stdenv'"
    );
}

#[test]
fn activity_names_are_validated() {
    assert_eq!(
        err(with(
            daemon(),
            vec![("activities", attrs([("a b", "x".into())]))]
        )),
        "attribute 'activities.a b': activity name \"a b\" must match [A-Za-z0-9_-]+ \
         (it becomes a case label)"
    );
    assert!(err(with(
        daemon(),
        vec![("activities", attrs([("x)", "x".into())]))]
    ))
    .starts_with("attribute 'activities.x)': activity name"));
    assert!(err(with(
        daemon(),
        vec![("removeActivities", vec!["a;b"].into())]
    ))
    .starts_with("attribute 'removeActivities[0]': activity name"));
    assert!(err(with(
        daemon(),
        vec![("instructions", attrs([("", attrs::<_, &str>([]))]))]
    ))
    .starts_with("attribute 'instructions.': activity name \"\""));
    assert_eq!(
        err(with(
            daemon(),
            vec![("activities", attrs([("x", Value::Int(1))]))]
        )),
        "attribute 'activities.x' must be a string (shell code), but it is int"
    );
}

#[test]
fn instructions_are_validated() {
    let e = |v: Value| err(with(daemon(), vec![("instructions", attrs([("go", v)]))]));
    assert_eq!(
        e(attrs([("instruction", "x".into())])),
        "attribute 'instructions.go.activity' is required: the verb logged when the activity \
         runs, e.g. \"Starting\""
    );
    assert_eq!(
        e(attrs([("activity", "Going".into())])),
        "attribute 'instructions.go.instruction' is required: the shell code of the activity"
    );
    assert_eq!(
        e(attrs([
            ("activity", "Going".into()),
            ("instruction", "x".into()),
            ("instructoin", "x".into())
        ])),
        "unknown parameter 'instructions.go.instructoin' (did you mean 'instruction'?)"
    );
    assert_eq!(
        e("x".into()),
        "attribute 'instructions.go' must be a set, but it is string"
    );
    assert_eq!(
        e(attrs([
            ("activity", Value::Int(1)),
            ("instruction", "x".into())
        ])),
        "attribute 'instructions.go.activity' must be a string, but it is int"
    );
}

#[test]
fn umask_user_path_environment_are_validated() {
    assert_eq!(
        err(with(daemon(), vec![("umask", "0228".into())])),
        "attribute 'umask': must be 1 to 4 octal digits such as \"022\", but it is \"0228\""
    );
    assert!(err(with(daemon(), vec![("umask", "022; id".into())])).starts_with("attribute 'umask'"));
    let p = gen(with(daemon(), vec![("umask", Value::Int(77))]));
    assert!(text(&p).contains("\numask 77\n"));
    for bad in ["a b", "a:b", "a\nb", "", "-x"] {
        assert_eq!(
            err(with(daemon(), vec![("user", bad.into())])),
            format!(
                "attribute 'user': {bad:?} is not a valid user name (non-empty, not starting \
                 with '-', no ':', whitespace or control characters)"
            )
        );
    }
    assert_eq!(
        err(with(daemon(), vec![("path", vec!["/a:b"].into())])),
        "attribute 'path[0]': \"/a:b\" cannot be a PATH entry (empty or contains ':')"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("environment", attrs([("A-B", "x".into())]))]
        )),
        "attribute 'environment.A-B': variable names must match [A-Za-z_][A-Za-z0-9_]*"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("environment", attrs([("A", Value::List(vec![]))]))]
        )),
        "attribute 'environment.A' must be a string or a number, but it is list"
    );
    assert_eq!(
        err(with(daemon(), vec![("process", "".into())])),
        "attribute 'process': must not be empty"
    );
    assert_eq!(
        err(with(daemon(), vec![("pidFile", "".into())])),
        "attribute 'pidFile': must not be empty"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("args", Value::List(vec![Value::List(vec![])]))]
        )),
        "attribute 'args[0]' must be a string or a number, but it is list"
    );
}

#[test]
fn dependencies_are_validated() {
    let e = |v: Value| err(with(daemon(), vec![("dependencies", Value::List(vec![v]))]));
    assert_eq!(
        e(attrs([("name", "x".into())])),
        "attribute 'dependencies[0]': is not a sysvinit process package (it has no sequence \
         number)"
    );
    assert_eq!(
        e(attrs([("name", "x".into()), ("sequence", Value::Null)])),
        "attribute 'dependencies[0]': is not a sysvinit process package (it has no sequence \
         number)"
    );
    assert_eq!(
        e("x".into()),
        "attribute 'dependencies[0]': is not a sysvinit process package (it is a string)"
    );
    assert_eq!(
        e(attrs([("sequence", Value::Int(1))])),
        "attribute 'dependencies[0]': is not a sysvinit process package (it has no name)"
    );
    assert_eq!(
        e(dep("x", -1)),
        "attribute 'dependencies[0].sequence': -1 is negative"
    );
    assert!(e(dep("a b", 1)).starts_with("attribute 'dependencies[0].name': \"a b\" is not"));
    assert_eq!(
        e(attrs([("name", "x".into()), ("sequence", "1".into())])),
        "attribute 'dependencies[0].sequence' must be an integer, but it is string"
    );
}

#[test]
fn composition_is_validated() {
    assert_eq!(
        err(with(daemon(), vec![("maxSequence", Value::Int(100))])),
        "attribute 'maxSequence': 100 is not between 0 and 99 (rc links carry two-digit \
         sequence numbers)"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![
                ("minSequence", Value::Int(50)),
                ("maxSequence", Value::Int(40))
            ]
        )),
        "attribute 'minSequence': 50 is above maxSequence 40"
    );
    assert_eq!(
        err(with(daemon(), vec![("runtimeDir", "".into())])),
        "attribute 'runtimeDir': must not be empty"
    );
    assert_eq!(
        err(with(daemon(), vec![("shell", "/bin/sh\nid".into())])),
        "attribute 'shell': must be a non-empty interpreter path on one line"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("forceDisableUserChange", "yes".into())]
        )),
        "attribute 'forceDisableUserChange' must be a boolean, but it is string"
    );
    assert_eq!(
        err(with(
            daemon(),
            vec![("ids", attrs([("uids", Value::Int(1))]))]
        )),
        "attribute 'ids.uids' must be a set, but it is int"
    );
    assert!(err(with(
        daemon(),
        vec![(
            "credentials",
            attrs([("users", attrs([("a/b", attrs::<_, &str>([]))]))])
        )]
    ))
    .starts_with("attribute 'credentials.users.a/b': user name"));
    assert_eq!(
        create_systemv_init_script(&Value::Int(1))
            .unwrap_err()
            .to_string(),
        "attribute 'argument' must be a set, but it is int"
    );
}

#[test]
fn generated_scripts_parse_with_sh() {
    let cases = [
        gen(daemon()),
        gen(with(foreground(), vec![("user", "u".into())])),
        gen(vec![("name", "n".into())]),
        gen(with(
            daemon(),
            vec![
                ("description", "it's \"$(x)\" `y`\n%s \\".into()),
                ("args", vec!["a'b", "$(c)", "\n"].into()),
                ("environment", attrs([("E", "'\"`$;".into())])),
            ],
        )),
    ];
    for p in cases {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(text(&p))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            text(&p),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
