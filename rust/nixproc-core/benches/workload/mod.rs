//! The reference workload of issue 6 (examples/bench/processes.nix) as
//! primop arguments, shared by the benches of nixproc-core and
//! nixproc-plugin (`#[path]`-included; not a bench target itself).

#![allow(dead_code)]

use std::collections::BTreeMap;

use nixproc_core::primops;
use nixproc_core::value::{NixString, Value};

pub const STORE: &str = "/nix/store";
pub const BUILDER: &str = "/nix/store/mp9y5pz6i5wcrf5qd3qamv0fpa2inrrk-nixproc-builder";
pub const WEBAPP: &str = "/nix/store/4fxar9jadjxq8zkpswb96jnqs6jjyh7b-webapp";
pub const INIT_FUNCTIONS: &str = "/nix/store/akgdi5h7ffqc319wgagzp759y0nll8py-init-functions";
pub const BASE_IMAGE: &str = "/nix/store/zby5lnjb7xxymw3sanx2bq7d0m89wm6a-nixproc-docker-base.tar";

pub const BACKENDS: [&str; 9] = [
    "sysvinit",
    "bsdrc",
    "supervisord",
    "systemd",
    "launchd",
    "cygrunsrv",
    "s6-rc",
    "docker",
    "disnix",
];

/// A string carrying the context of the store path it starts with, as the
/// plugin hands it over (`"${pkg}/bin/x"` carries `pkg`'s output).
pub fn store_str(s: String, drv_name: &str) -> Value {
    let hash = &s[STORE.len() + 1..STORE.len() + 33];
    let context = [format!("!out!{STORE}/{hash}-{drv_name}.drv")].into();
    Value::Str(NixString { s, context })
}

pub fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Attrs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The composition `nix/default.nix` passes for `backend` (state dir
/// /tmp/bench, forceDisableUserChange).
pub fn composition(backend: &str) -> Vec<(&'static str, Value)> {
    let mut c = vec![
        ("runtimeDir", Value::from("/tmp/bench/run")),
        ("logDir", Value::from("/tmp/bench/log")),
        ("tmpDir", Value::from("/tmp/bench/tmp")),
        ("forceDisableUserChange", Value::Bool(true)),
        ("ids", obj(vec![])),
        ("shell", Value::from("/bin/sh")),
    ];
    let helper = |cmd: &str| store_str(format!("{BUILDER} {cmd}"), "nixproc-builder");
    if backend != "sysvinit" {
        c.push(("foregroundProxy", helper("foreground-proxy")));
    }
    match backend {
        "sysvinit" => {
            c.push((
                "initFunctions",
                store_str(INIT_FUNCTIONS.into(), "init-functions"),
            ));
            c.push(("startProcessAsDaemon", helper("daemonize")));
        }
        "s6-rc" => {
            c.push(("execline", Value::from("/usr/lib/execline")));
            c.push(("s6", Value::from("/usr")));
        }
        "bsdrc" => {
            c.push(("rcSubr", Value::from("/etc/rc.subr")));
            c.push(("bsdDaemon", Value::from("/usr/sbin/daemon")));
        }
        "docker" => {
            c.push(("stateDir", Value::from("/tmp/bench")));
            c.push((
                "dockerBaseImage",
                store_str(BASE_IMAGE.into(), "nixproc-docker-base.tar"),
            ));
        }
        "disnix" => c.push(("daemonize", helper("daemonize"))),
        _ => {}
    }
    c
}

/// What a backend's generator needs to know of a dependency
/// (`dependencyInfo` in nix/default.nix).
pub fn dependency_info(backend: &str, name: &str) -> Value {
    let mut d = vec![("name", Value::from(name))];
    match backend {
        "sysvinit" => d.push(("sequence", Value::Int(3))),
        "supervisord" | "docker" => d.push(("priority", Value::Int(990))),
        _ => {}
    }
    obj(d)
}

/// The createManagedProcess argument of instance `i` of the reference
/// workload (examples/bench/webapp.nix), for `backend`.
pub fn managed_process(backend: &str, i: usize) -> Value {
    let name = format!("webapp{i}");
    let mut a = composition(backend);
    a.extend([
        ("processManager", Value::from(backend)),
        ("instanceName", Value::from(name.as_str())),
        (
            "description",
            Value::from(format!("Example web application {name}")),
        ),
        (
            "process",
            store_str(format!("{WEBAPP}/bin/webapp"), "webapp"),
        ),
        ("daemonExtraArgs", Value::from(vec!["-D"])),
        (
            "environment",
            obj(vec![
                ("PORT", Value::Int(20000 + i as i64)),
                (
                    "PID_FILE",
                    Value::from(format!("/tmp/bench/tmp/{name}.pid")),
                ),
                ("INSTANCE_NAME", Value::from(name.as_str())),
            ]),
        ),
        (
            "overrides",
            obj(vec![(
                "sysvinit",
                obj(vec![("runlevels", Value::from(vec![3i64, 4, 5]))]),
            )]),
        ),
        (
            "dependencies",
            Value::List(if i > 1 && !(i - 1).is_multiple_of(10) {
                vec![dependency_info(backend, &format!("webapp{}", i - 1))]
            } else {
                vec![]
            }),
        ),
    ]);
    obj(a)
}

/// The argument of the backend's own constructor for the same process:
/// createManagedProcess's translation plus the composition.
pub fn backend_args(backend: &str, i: usize) -> Value {
    let translated = primops::call(
        "nixprocTranslateManagedProcess",
        &managed_process(backend, i),
    )
    .unwrap_or_else(|e| panic!("{backend}: {e}"));
    let mut map: BTreeMap<String, Value> = composition(backend)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if let Value::Attrs(t) = translated {
        map.extend(t);
    }
    Value::Attrs(map)
}

pub fn constructor(backend: &str) -> &'static str {
    match backend {
        "sysvinit" => "createSystemVInitScript",
        "bsdrc" => "createBSDRCScript",
        "supervisord" => "createSupervisordProgram",
        "systemd" => "createSystemdService",
        "launchd" => "createLaunchdDaemon",
        "cygrunsrv" => "createCygrunsrvParams",
        "s6-rc" => "createS6RCService",
        "docker" => "createDockerContainer",
        "disnix" => "createProcessScript",
        other => panic!("unknown backend {other}"),
    }
}
