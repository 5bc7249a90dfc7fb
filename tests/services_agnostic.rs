//! examples/services-agnostic: real system services. Two PostgreSQL
//! servers run side by side, deployed by a normal user (unprivileged: own
//! state dir, no user switching), each on the port `nixproc id-assign` gave
//! it, and both answer psql; nginx serves its page. Under sysvinit and
//! supervisord. PostgreSQL refuses to run as root, so nixproc runs as a
//! normal user here, through a nix-daemon (set up as root, as CI runs).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const USER: &str = "nixproc-test";

fn psql(port: u16, sql: &str) -> Option<String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
        .args(["-d", "postgres", "-tAc", sql])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reads `ids.<resource>.<instance>` of an ids.nix.
fn id(ids: &Path, resource: &str, instance: &str) -> u16 {
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "-E"])
        .arg(format!(
            "(import {}).ids.{resource}.{instance}",
            ids.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn two_postgresql_servers_answer(pm: &str) {
    if !is_root() {
        eprintln!("skipped: setting up the unprivileged user and nix-daemon needs root");
        return;
    }
    let model = repo_root().join("examples/services-agnostic/processes.nix");
    let d = Deployment::unprivileged_user(&model, "", USER).with_process_manager(pm);
    let dir = d.dir.path();

    // Pools placed on free ports, so parallel tests do not collide.
    let pg = free_port_range(4);
    let web = free_port_range(2);
    let resources = dir.join("idresources.nix");
    std::fs::write(
        &resources,
        format!(
            "{{ postgresqlPorts = {{ min = {pg}; max = {}; }};\n  \
             nginxPorts = {{ min = {web}; max = {}; }};\n  \
             uids = {{ min = 2000; max = 3000; }};\n  gids = {{ min = 2000; max = 3000; }}; }}\n",
            pg + 3,
            web + 1
        ),
    )
    .unwrap();
    let ids = dir.join("ids.nix");
    let out = d.nixproc(&[
        "id-assign",
        "--id-resources",
        resources.to_str().unwrap(),
        "--output-file",
        ids.to_str().unwrap(),
        model.to_str().unwrap(),
    ]);
    assert_success(&out, "nixproc id-assign");
    let (p1, p2) = (
        id(&ids, "postgresqlPorts", "postgresql1"),
        id(&ids, "postgresqlPorts", "postgresql2"),
    );
    let nginx = id(&ids, "nginxPorts", "nginx");
    assert_ne!(p1, p2, "each instance has its own port");
    assert!((pg..pg + 4).contains(&p1) && (pg..pg + 4).contains(&p2));

    let params = format!("{{ ids = (import {}).ids; }}", ids.display());
    let out = d.nixproc(&["switch", "--extra-params", &params, model.to_str().unwrap()]);
    assert_success(&out, "nixproc switch");

    for port in [p1, p2] {
        eventually(Duration::from_secs(30), "postgresql answers psql", || {
            psql(port, "SHOW port").is_some()
        });
        assert_eq!(psql(port, "SHOW port").unwrap(), port.to_string());
        // Separate servers: a table made in one is not in the other.
        let table = format!("t{port}");
        assert!(psql(port, &format!("CREATE TABLE {table} (x int)")).is_some());
    }
    assert_eq!(
        psql(
            p1,
            &format!("SELECT count(*) FROM pg_tables WHERE tablename = 't{p2}'")
        )
        .unwrap(),
        "0"
    );
    let servers: Vec<u32> = [p1, p2]
        .iter()
        .map(|p| listener_pid(*p).expect("a listener"))
        .collect();
    for pid in &servers {
        let uid = uid_of(*pid);
        assert_ne!(uid, 0, "postgres runs as the deploying user, not root");
    }
    answers(nginx, "localhost", "Hello from nginx!");

    let out = d.nixproc(&["switch", "--undeploy"]);
    assert_success(&out, "undeploy");
    for pid in servers {
        eventually(Duration::from_secs(30), "postgres stopped", || !alive(pid));
    }
    assert!(port_closed(nginx));
}

#[test]
fn sysvinit_runs_two_postgresql_servers_side_by_side() {
    two_postgresql_servers_answer("sysvinit");
}

#[test]
fn supervisord_runs_two_postgresql_servers_side_by_side() {
    two_postgresql_servers_answer("supervisord");
}
