//! Criterion benchmarks of the generators, the value model and the string
//! context computation, on the reference workload of issue 6 (one webapp
//! instance of examples/bench/processes.nix, as its primop receives it).
//!
//!   CARGO_TARGET_DIR=… cargo bench -p nixproc-core --bench generators
//!
//! Every figure is the Rust side of one primop call; the C++ walk of the
//! Nix value and the rebuilding of the result are in the plugin's bench.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use nixproc_core::context;
use nixproc_core::primops;
use nixproc_core::value::{NixString, Value};

const STORE: &str = "/nix/store";
const BUILDER: &str = "/nix/store/mp9y5pz6i5wcrf5qd3qamv0fpa2inrrk-nixproc-builder";
const WEBAPP: &str = "/nix/store/4fxar9jadjxq8zkpswb96jnqs6jjyh7b-webapp";
const INIT_FUNCTIONS: &str = "/nix/store/akgdi5h7ffqc319wgagzp759y0nll8py-init-functions";
const BASE_IMAGE: &str = "/nix/store/zby5lnjb7xxymw3sanx2bq7d0m89wm6a-nixproc-docker-base.tar";

const BACKENDS: [&str; 9] = [
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
fn store_str(s: String, drv_name: &str) -> Value {
    let hash = &s[STORE.len() + 1..STORE.len() + 33];
    let context = [format!("!out!{STORE}/{hash}-{drv_name}.drv")].into();
    Value::Str(NixString { s, context })
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Attrs(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The composition `nix/default.nix` passes for `backend` (state dir
/// /tmp/bench, forceDisableUserChange).
fn composition(backend: &str) -> Vec<(&'static str, Value)> {
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
fn dependency_info(backend: &str, name: &str) -> Value {
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
fn managed_process(backend: &str, i: usize) -> Value {
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
            Value::List(if i > 1 && (i - 1) % 10 != 0 {
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
fn backend_args(backend: &str, i: usize) -> Value {
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

fn constructor(backend: &str) -> &'static str {
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

/// One primop call as the plugin makes it: index the input's context, run
/// the generator, recompute the context of every output string.
fn primop_call(name: &str, input: &Value) -> Value {
    let index = context::collect(input, STORE);
    let mut out = primops::call(name, input).unwrap_or_else(|e| panic!("{e}"));
    context::attach(&mut out, &index, STORE);
    out
}

fn generators(c: &mut Criterion) {
    let mut g = c.benchmark_group("createManagedProcess");
    for backend in BACKENDS {
        let input = managed_process(backend, 5);
        g.bench_function(backend, |b| {
            b.iter(|| primop_call("createManagedProcess", black_box(&input)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("constructor");
    for backend in BACKENDS {
        let name = constructor(backend);
        let input = backend_args(backend, 5);
        g.bench_function(name, |b| b.iter(|| primop_call(name, black_box(&input))));
    }
    g.finish();

    let mut g = c.benchmark_group("translate");
    let input = managed_process("systemd", 5);
    g.bench_function("nixprocTranslateManagedProcess", |b| {
        b.iter(|| primops::call("nixprocTranslateManagedProcess", black_box(&input)))
    });
    g.finish();
}

fn values(c: &mut Criterion) {
    let input = managed_process("sysvinit", 5);
    let output = primop_call("createManagedProcess", &input);
    let json = output.to_json();
    let mut g = c.benchmark_group("value");
    g.bench_function("to_json", |b| b.iter(|| black_box(&output).to_json()));
    g.bench_function("from_json", |b| {
        b.iter(|| Value::from_json(black_box(&json)))
    });
    g.bench_function("clone", |b| b.iter(|| black_box(&output).clone()));
    g.finish();

    let mut g = c.benchmark_group("context");
    g.bench_function("collect", |b| {
        b.iter(|| context::collect(black_box(&input), STORE))
    });
    let index = context::collect(&input, STORE);
    g.bench_function("attach", |b| {
        b.iter_batched(
            || output.clone(),
            |mut out| context::attach(&mut out, &index, STORE),
            BatchSize::SmallInput,
        )
    });
    let script = output.as_attrs().unwrap()["files"].clone();
    g.bench_function("store_paths", |b| {
        b.iter(|| match black_box(&script) {
            Value::List(files) => files
                .iter()
                .filter_map(|f| f.as_attrs()?.get("text")?.as_str())
                .map(|t| context::store_paths(t, STORE).len())
                .sum::<usize>(),
            _ => 0,
        })
    });
    g.finish();
}

/// The model check of the whole reference workload at N = 5,000.
fn model(c: &mut Criterion) {
    let n = 5000;
    let mut instances: Vec<Value> = (1..=n)
        .map(|i| {
            let deps = if i > 1 && (i - 1) % 10 != 0 {
                vec![format!("webapp{}", i - 1)]
            } else {
                vec![]
            };
            obj(vec![
                ("key", Value::from(format!("webapp{i}"))),
                ("name", Value::from(format!("webapp{i}"))),
                ("dependencies", Value::from(deps)),
            ])
        })
        .collect();
    instances.push(obj(vec![
        ("key", Value::from("nginx")),
        ("name", Value::from("nginx")),
        (
            "dependencies",
            Value::from((1..=n).map(|i| format!("webapp{i}")).collect::<Vec<_>>()),
        ),
    ]));
    let input = obj(vec![("instances", Value::List(instances))]);
    let mut g = c.benchmark_group("model");
    g.sample_size(20);
    g.bench_function("nixprocCheckModel/5000", |b| {
        b.iter(|| primops::call("nixprocCheckModel", black_box(&input)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, generators, values, model);
criterion_main!(benches);
