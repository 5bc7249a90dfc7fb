use super::*;
use crate::primops::call;
use crate::value::attrs;

/// Composition parameters some backend requires; each backend gets those
/// among its own composition keys.
const COMPOSITION: &[(&str, &str)] = &[
    ("initFunctions", "/nix/store/ccc-init-functions"),
    (
        "foregroundProxy",
        "/nix/store/ddd-nixproc-builder foreground-proxy",
    ),
    ("daemonize", "/nix/store/ddd-nixproc-builder daemonize"),
    ("dockerBaseImage", "/nix/store/eee-base.tar"),
    ("shell", "/bin/sh"),
];

fn webapp(extra: Vec<(&str, Value)>) -> Value {
    let pm = extra
        .iter()
        .find(|(k, _)| *k == "processManager")
        .and_then(|(_, v)| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "sysvinit".into());
    let keys = crate::agnostic::backend(&pm).unwrap().composition_keys;
    let mut all: Vec<(&str, Value)> = COMPOSITION
        .iter()
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| (*k, Value::str(*v)))
        .collect();
    all.extend([
        ("name", Value::str("webapp")),
        ("processManager", Value::str("sysvinit")),
        ("process", Value::str("/nix/store/aaa-webapp/bin/webapp")),
        ("daemonExtraArgs", Value::List(vec![Value::str("-D")])),
    ]);
    all.extend(extra);
    attrs(all)
}

fn dir_unit() -> Value {
    attrs([
        ("type", Value::str("directory")),
        ("path", Value::str("/var/lib/webapp/uploads")),
    ])
}

fn pg_unit() -> Value {
    attrs([
        ("type", Value::str("postgresql-database")),
        ("database", Value::str("webapp")),
        ("host", Value::str("/run/postgresql")),
        ("port", Value::Int(5432)),
    ])
}

fn manifest_of(v: &Value) -> serde_json::Value {
    let out = call("createManagedProcess", v).unwrap();
    out.as_attrs().unwrap()["manifest"].to_json()
}

#[test]
fn state_reaches_manifest_and_package_file() {
    let v = webapp(vec![
        ("state", attrs([("uploads", dir_unit()), ("db", pg_unit())])),
        (
            "schema",
            attrs([
                ("version", Value::str("v2")),
                ("migrate", Value::str("/nix/store/bbb-migrate/bin/migrate")),
            ]),
        ),
        ("rollback", Value::str("restore")),
    ]);
    let spec = crate::agnostic::create_managed_process(&v).unwrap();
    let state = spec.manifest.state.clone().unwrap();
    assert_eq!(state.rollback, RollbackPolicy::Restore);
    assert_eq!(state.schema.as_ref().unwrap().version, "v2");
    assert_eq!(state.units["uploads"].consistency, Consistency::Stop);
    assert_eq!(state.units["db"].consistency, Consistency::Online);
    let file = spec
        .files
        .iter()
        .find(|f| f.path == "etc/nixproc/state/webapp.json")
        .unwrap();
    let back: StateSpec = serde_json::from_str(&file.text).unwrap();
    assert_eq!(back, state);
    insta::assert_snapshot!(file.text);
}

#[test]
fn state_changes_the_revision_readiness_does_not() {
    let plain = crate::agnostic::create_managed_process(&webapp(vec![])).unwrap();
    let stateful = crate::agnostic::create_managed_process(&webapp(vec![(
        "state",
        attrs([("u", dir_unit())]),
    )]))
    .unwrap();
    let ready = crate::agnostic::create_managed_process(&webapp(vec![(
        "readiness",
        attrs([(
            "checks",
            Value::List(vec![attrs([
                ("type", Value::str("tcp")),
                ("port", Value::Int(5000)),
            ])]),
        )]),
    )]))
    .unwrap();
    assert_ne!(plain.manifest.revision, stateful.manifest.revision);
    assert_eq!(plain.manifest.revision, ready.manifest.revision);
    assert!(plain.manifest.state.is_none() && plain.manifest.readiness.is_none());
    // Without declarations the manifest JSON is unchanged (no new keys).
    let m = manifest_of(&webapp(vec![]));
    assert!(m.get("state").is_none() && m.get("readiness").is_none());
}

#[test]
fn every_backend_primop_accepts_lifecycle_keys() {
    for def in crate::agnostic::BACKENDS {
        let v = webapp(vec![
            ("processManager", Value::str(def.name)),
            ("instanceName", Value::str("webapp")),
            ("state", attrs([("uploads", dir_unit())])),
            (
                "readiness",
                attrs([
                    (
                        "checks",
                        Value::List(vec![attrs([
                            ("type", Value::str("http")),
                            ("url", Value::str("http://127.0.0.1:5000/")),
                        ])]),
                    ),
                    ("timeout", Value::Int(5)),
                ]),
            ),
        ]);
        // Through createManagedProcess …
        let m = manifest_of(&v);
        assert_eq!(
            m["state"]["units"]["uploads"]["type"], "directory",
            "{}",
            def.name
        );
        assert_eq!(m["readiness"]["timeout"], 5, "{}", def.name);
        // … and through translate + the backend's own primop (the path an
        // override function takes).
        let translated = call("nixprocTranslateManagedProcess", &v).unwrap();
        let Value::Attrs(mut t) = translated else {
            panic!()
        };
        for k in def.composition_keys {
            if let Some(x) = v.as_attrs().unwrap().get(*k) {
                t.insert((*k).to_string(), x.clone());
            }
        }
        let primop = crate::primops::PRIMOPS
            .iter()
            .find(|p| {
                p.name != "createManagedProcess"
                    && p.name.starts_with("create")
                    && (p.fun)(&Value::Attrs(t.clone())).is_ok()
            })
            .unwrap_or_else(|| panic!("no backend primop takes the {} translation", def.name));
        let out = (primop.fun)(&Value::Attrs(t)).unwrap();
        let m2 = out.as_attrs().unwrap()["manifest"].to_json();
        assert_eq!(m2["state"], m["state"], "{}", def.name);
    }
}

fn err(extra: Vec<(&str, Value)>) -> String {
    call("createManagedProcess", &webapp(extra)).unwrap_err()
}

#[test]
fn hostile_declarations_are_clear_errors() {
    let unit = |pairs: Vec<(&str, Value)>| attrs([("u", attrs(pairs))]);
    let cases: Vec<(Vec<(&str, Value)>, &str)> = vec![
        (
            vec![("state", unit(vec![("type", Value::str("zfs"))]))],
            "state.u.type': \"zfs\" is not a state unit type",
        ),
        (
            vec![("state", unit(vec![("type", Value::str("directory"))]))],
            "'state.u.path' is required",
        ),
        (
            vec![(
                "state",
                unit(vec![
                    ("type", Value::str("directory")),
                    ("path", Value::str("relative/dir")),
                ]),
            )],
            "must be an absolute path",
        ),
        (
            vec![(
                "state",
                unit(vec![
                    ("type", Value::str("directory")),
                    ("path", Value::str("/var/lib/../etc")),
                ]),
            )],
            "without '..'",
        ),
        (
            vec![(
                "state",
                unit(vec![
                    ("type", Value::str("postgresql-database")),
                    ("database", Value::str("x")),
                    ("password", Value::str("hunter2")),
                ]),
            )],
            "passwords must not enter the world-readable Nix store",
        ),
        (
            vec![(
                "state",
                unit(vec![
                    ("type", Value::str("directory")),
                    ("path", Value::str("/x")),
                    ("consistency", Value::str("freeze")),
                ]),
            )],
            "\"freeze\" is not a consistency policy",
        ),
        (
            vec![("state", attrs([("../evil", dir_unit())]))],
            "not a valid state unit name",
        ),
        (
            vec![("schema", attrs([("version", Value::str("1"))]))],
            "declare `state` units too",
        ),
        (
            vec![
                ("state", attrs([("u", dir_unit())])),
                ("schema", attrs([("migrate", Value::str("x"))])),
            ],
            "'schema.version' is required",
        ),
        (
            vec![("rollback", Value::str("yolo"))],
            "\"yolo\" is not a rollback policy",
        ),
        (
            vec![("readiness", attrs([("checks", Value::List(vec![]))]))],
            "'readiness.checks' is required",
        ),
        (
            vec![(
                "readiness",
                attrs([(
                    "checks",
                    Value::List(vec![attrs([
                        ("type", Value::str("tcp")),
                        ("port", Value::Int(70000)),
                    ])]),
                )]),
            )],
            "readiness.checks[0].port': 70000 is not a TCP port",
        ),
        (
            vec![(
                "readiness",
                attrs([(
                    "checks",
                    Value::List(vec![attrs([
                        ("type", Value::str("http")),
                        ("url", Value::str("https://x/")),
                    ])]),
                )]),
            )],
            "only plain http:// URLs",
        ),
        (
            vec![(
                "readiness",
                attrs([
                    (
                        "checks",
                        Value::List(vec![attrs([("type", Value::str("pid-file"))])]),
                    ),
                    ("timeout", Value::Int(0)),
                ]),
            )],
            "readiness.timeout': 0 must be positive",
        ),
        (
            vec![(
                "readiness",
                attrs([(
                    "checks",
                    Value::List(vec![attrs([
                        ("type", Value::str("log-line")),
                        ("contains", Value::str("x")),
                        ("contain", Value::str("x")),
                    ])]),
                )]),
            )],
            "unknown parameter 'readiness.checks[0].contain'",
        ),
    ];
    for (extra, want) in cases {
        let e = err(extra);
        assert!(e.contains(want), "{e}\n  should contain: {want}");
        assert!(e.starts_with("createManagedProcess: "), "{e}");
    }
}

#[test]
fn defaults_apply() {
    let v = webapp(vec![(
        "readiness",
        attrs([(
            "checks",
            Value::List(vec![
                attrs([("type", Value::str("tcp")), ("port", Value::Int(5000))]),
                attrs([
                    ("type", Value::str("log-line")),
                    ("contains", Value::str("listening")),
                ]),
            ]),
        )]),
    )]);
    let spec = crate::agnostic::create_managed_process(&v).unwrap();
    let r = spec.manifest.readiness.unwrap();
    assert_eq!(r.timeout, DEFAULT_READINESS_TIMEOUT);
    assert_eq!(r.interval, DEFAULT_READINESS_INTERVAL);
    assert_eq!(
        r.checks[0],
        ReadinessCheck::Tcp {
            host: "127.0.0.1".into(),
            port: 5000
        }
    );
}
