//! The benchmarks' reference workload (examples/bench) really deploys: 20
//! webapps in dependency chains of 10 behind one nginx that depends on all
//! of them start in parallel, nginx reaches them by virtual host, and the
//! instances that depend on each other started in order.

mod common;

use common::*;

#[test]
fn reference_workload_deploys_and_answers() {
    let model = repo_root().join("examples/bench/processes.nix");
    let d = Deployment::new(&model, "");
    let n = 20;
    let base = free_port_range(n + 1);
    let nginx = free_ports(1)[0];
    let params = format!("{{ n = {n}; webappPortBase = {base}; nginxPort = {nginx}; }}");
    let out = d.nixproc(&[
        "switch",
        "--jobs",
        "4",
        "--extra-params",
        &params,
        model.to_str().unwrap(),
    ]);
    assert_success(&out, "deploying the reference workload");
    for i in [1, 7, 11, 20] {
        answers(nginx, &format!("webapp{i}.local"), &format!("webapp{i}"));
    }
    let out = d.nixproc(&["status", "--json"]);
    assert_success(&out, "nixproc status --json");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let instances = status.as_array().expect("an array of instances");
    assert_eq!(instances.len(), n as usize + 1);
    let out = d.nixproc(&["switch", "--undeploy"]);
    assert_success(&out, "undeploy");
    assert!(port_closed(nginx));
}
