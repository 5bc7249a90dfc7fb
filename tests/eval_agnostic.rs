//! createManagedProcess at evaluation time, per backend: overrides in both
//! forms (attrset deep-merged in Rust, function applied in Nix between the
//! translate and generate primops), wrong overrides as clear Nix errors,
//! and builder mode (no plugin) producing exactly the plugin's output.

mod common;

use std::process::Command;

use common::*;

const BACKENDS: [&str; 9] = [
    "sysvinit",
    "bsdrc",
    "supervisord",
    "systemd",
    "launchd",
    "cygrunsrv",
    "s6-rc",
    "disnix",
    "docker",
];

/// `nix-instantiate --eval --strict --json` of `expr`, with `<nixproc>` and
/// (unless `builder_mode`) the plugin. Ok(json) or Err(stderr).
fn eval(expr: &str, builder_mode: bool) -> Result<serde_json::Value, String> {
    let bin = release_dir();
    let mut cmd = Command::new("nix-instantiate");
    if builder_mode {
        // --eval is read-only by default; builder mode builds (IFD).
        cmd.arg("--read-write-mode");
    } else {
        cmd.arg("--option")
            .arg("plugin-files")
            .arg(bin.join("libnixproc_plugin.so"));
    }
    cmd.args([
        "--option",
        "substituters",
        "",
        "--eval",
        "--strict",
        "--json",
        "-I",
    ])
    .arg(format!("nixproc={}", repo_root().join("nix").display()))
    .env("NIXPROC_BUILDER", bin.join("nixproc-builder"))
    .arg("-E")
    .arg(expr);
    let out = run(&mut cmd);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("json"))
    } else {
        Err(stderr(&out))
    }
}

/// The generated files (path → text) of one createManagedProcess call.
fn files(pm: &str, process: &str, builder_mode: bool) -> Result<Vec<(String, String)>, String> {
    let expr = format!(
        r#"let
             np = import <nixproc> {{ stateDir = "/srv/t"; processManager = "{pm}"; }};
             p = np.createManagedProcess ({process});
           in map (f: [ f.path f.text ]) p.nixproc.spec.files"#
    );
    let v = eval(&expr, builder_mode)?;
    Ok(v.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f[0].as_str().unwrap().to_string(),
                f[1].as_str().unwrap().to_string(),
            )
        })
        .collect())
}

fn text_of(files: &[(String, String)], suffix: &str) -> String {
    files
        .iter()
        .find(|(p, _)| p.ends_with(suffix))
        .unwrap_or_else(|| panic!("no file ending in {suffix}: {files:?}"))
        .1
        .clone()
}

const BASE: &str = r#"{ instanceName = "hello"; process = "/bin/sleep"; args = [ "1000" ]; "#;

fn with_overrides(overrides: &str) -> String {
    format!("{BASE} overrides = {overrides}; }}")
}

/// (backend, main file suffix, attrset override, function override, what both must produce)
fn cases() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
)> {
    vec![
        (
            "sysvinit",
            "init.d/hello",
            r#"{ sysvinit.instructions.hi = { activity = "Greeting"; instruction = "echo hi"; }; }"#,
            r#"{ sysvinit = a: a // { instructions.hi = { activity = "Greeting"; instruction = "echo hi"; }; }; }"#,
            "Greeting",
        ),
        (
            "supervisord",
            "conf.d/hello.conf",
            r#"{ supervisord.startsecs = 7; }"#,
            r#"{ supervisord = a: a // { startsecs = 7; }; }"#,
            "startsecs=7",
        ),
        (
            "systemd",
            "nix-process-hello.service",
            r#"{ systemd.Service.Restart = "always"; }"#,
            r#"{ systemd = a: a // { Service = a.Service // { Restart = "always"; }; }; }"#,
            "Restart=always",
        ),
        (
            "s6-rc",
            "hello-srv/timeout-kill",
            r#"{ s6-rc.timeoutKill = 5000; }"#,
            r#"{ s6-rc = a: a // { timeoutKill = 5000; }; }"#,
            "5000",
        ),
        (
            "bsdrc",
            "etc/rc.d/hello",
            r#"{ bsdrc.rcvar = "enable"; }"#,
            r#"{ bsdrc = a: a // { rcvar = "enable"; }; }"#,
            "_enable",
        ),
        (
            "launchd",
            "org.nixos.hello.plist",
            r#"{ launchd.WatchPaths = [ "/etc/hosts" ]; }"#,
            r#"{ launchd = a: a // { WatchPaths = [ "/etc/hosts" ]; }; }"#,
            "<key>WatchPaths</key>",
        ),
        (
            "cygrunsrv",
            "nix-process-hello-cygrunsrvparams",
            r#"{ cygrunsrv.type = "manual"; }"#,
            r#"{ cygrunsrv = a: a // { type = "manual"; }; }"#,
            "manual",
        ),
        (
            "disnix",
            "etc/dysnomia/process/hello",
            r#"{ disnix.pidFile = "/srv/t/other.pid"; }"#,
            r#"{ disnix = a: a // { pidFile = "/srv/t/other.pid"; }; }"#,
            "pidFile=/srv/t/other.pid",
        ),
        (
            "docker",
            "hello-docker-createparams",
            r#"{ docker.dockerCreateParameters = { memory = "1g"; }; }"#,
            r#"{ docker = a: a // { dockerCreateParameters = { memory = "1g"; }; }; }"#,
            "--memory",
        ),
    ]
}

#[test]
fn attrset_and_function_overrides_give_the_same_package_for_every_backend() {
    for (pm, file, attrset, function, expect) in cases() {
        let plain = files(pm, &format!("{BASE} }}"), false).unwrap();
        let a = files(pm, &with_overrides(attrset), false).unwrap();
        let f = files(pm, &with_overrides(function), false).unwrap();
        assert!(
            text_of(&a, file).contains(expect),
            "{pm}: attrset override applied"
        );
        assert_eq!(a, f, "{pm}: attrset and function overrides agree");
        assert_ne!(plain, a, "{pm}: the override changed something");
        // Overrides for other backends are ignored (functions included).
        let mut others = BACKENDS.iter().filter(|b| **b != pm);
        let (o1, o2) = (others.next().unwrap(), others.next().unwrap());
        let other = files(
            pm,
            &with_overrides(&format!(r#"{{ {o1}.Whatever = true; {o2} = a: a; }}"#)),
            false,
        )
        .unwrap();
        assert_eq!(plain, other, "{pm}: foreign overrides ignored");
    }
}

#[test]
fn wrong_overrides_are_clear_errors() {
    for pm in BACKENDS {
        let e = files(pm, &with_overrides(r#"{ supervisor.x = 1; }"#), false).unwrap_err();
        assert!(
            e.contains("overrides.supervisor") && e.contains("not a process manager"),
            "{pm}: {e}"
        );

        // Also when the selected backend's override is a function (Rust
        // never sees the overrides then).
        let e = files(
            pm,
            &with_overrides(&format!(r#"{{ {pm} = a: a; supervisor.x = 1; }}"#)),
            false,
        )
        .unwrap_err();
        assert!(
            e.contains("overrides.supervisor") && e.contains("not a process manager"),
            "{pm}: {e}"
        );

        let e = files(pm, &with_overrides(&format!(r#"{{ {pm} = 3; }}"#)), false).unwrap_err();
        assert!(
            e.contains(&format!("overrides.{pm}")) && e.contains("int"),
            "{pm}: {e}"
        );

        let e = files(
            pm,
            &with_overrides(&format!(r#"{{ {pm} = a: 1; }}"#)),
            false,
        )
        .unwrap_err();
        assert!(e.contains("must return a set"), "{pm}: {e}");

        let e = files(
            pm,
            &with_overrides(&format!(r#"{{ {pm} = a: a // {{ name = "other"; }}; }}"#)),
            false,
        )
        .unwrap_err();
        assert!(e.contains("must not change 'name'"), "{pm}: {e}");
    }
    // An unknown backend parameter coming from an override names the override.
    let e = files(
        "supervisord",
        &with_overrides(r#"{ supervisord.autorestrt = true; }"#),
        false,
    )
    .unwrap_err();
    assert!(e.contains("autorestrt") && e.contains("autorestart"), "{e}");
    let e = files(
        "sysvinit",
        &with_overrides(r#"{ sysvinit.runlevel = [ 3 ]; }"#),
        false,
    )
    .unwrap_err();
    assert!(
        e.contains("overrides.sysvinit") && e.contains("runlevels"),
        "{e}"
    );
}

#[test]
fn missing_process_is_a_clear_error() {
    for pm in BACKENDS {
        let e = files(pm, r#"{ instanceName = "x"; }"#, false).unwrap_err();
        assert!(
            e.contains("no foreground process or daemon known"),
            "{pm}: {e}"
        );
    }
}

#[test]
fn builder_mode_evaluates_without_the_plugin_and_agrees_with_it() {
    for (pm, _, attrset, function, _) in cases() {
        for process in [
            format!("{BASE} }}"),
            with_overrides(attrset),
            with_overrides(function),
        ] {
            let plugin = files(pm, &process, false).unwrap();
            let builder = files(pm, &process, true).unwrap();
            assert_eq!(plugin, builder, "{pm}: builder mode differs for {process}");
        }
    }
    // Errors come through builder mode too (as a failed build).
    let e = files(
        "sysvinit",
        &with_overrides(r#"{ sysvinit.runlevel = [ 3 ]; }"#),
        true,
    )
    .unwrap_err();
    assert!(e.contains("runlevels"), "{e}");
}

/// Every file, link and mode of a built tree, for comparison.
fn tree(root: &std::path::Path) -> Vec<(String, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.file_type().is_symlink() {
                out.push((
                    rel,
                    format!("-> {}", std::fs::read_link(&p).unwrap().display()),
                ));
            } else if meta.is_dir() {
                out.push((rel, "dir".into()));
                stack.push(p);
            } else {
                let mode = meta.permissions().mode() & 0o777;
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
                out.push((rel, format!("{mode:o} {text}")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn builder_mode_builds_byte_identical_profiles() {
    let model = repo_root().join("examples/webapps-agnostic/processes.nix");
    // docker is left out: the example's nginx has an initialize script,
    // which needs a shell in the store inside a container (nixpkgs'
    // runtimeShell); the createManagedProcess cases above cover docker.
    for pm in BACKENDS.iter().filter(|pm| **pm != "docker") {
        let build = |builder_mode: bool| {
            let mut cmd = Command::new(nixproc_bin());
            cmd.args([
                "build",
                "-P",
                pm,
                "--state-dir",
                "/srv/np",
                "--force-disable-user-change",
            ])
            .arg(&model);
            if builder_mode {
                cmd.env("NIXPROC_PLUGIN", "none");
            }
            let out = run(&mut cmd);
            assert_success(
                &out,
                &format!("build for {pm} (builder mode: {builder_mode})"),
            );
            std::path::PathBuf::from(stdout(&out).trim())
        };
        let (plugin, builder) = (build(false), build(true));
        // A profile that names itself (disnix components point at their
        // wrapper through the output placeholder) differs in that path only:
        // builder-mode strings carry more context, so the derivations and
        // out paths differ.
        let own = |root: &std::path::Path| {
            let me = root.display().to_string();
            tree(root)
                .into_iter()
                .map(|(p, t)| (p, t.replace(&me, "<out>")))
                .collect::<Vec<_>>()
        };
        let (a, b) = (own(&plugin), own(&builder));
        assert!(
            a.iter().any(|(p, _)| p.contains("manifest.json")),
            "{pm}: manifest present"
        );
        assert_eq!(
            a, b,
            "{pm}: profiles differ between plugin and builder mode"
        );
    }
}
