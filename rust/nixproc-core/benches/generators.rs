//! Criterion benchmarks of the generators, the value model and the string
//! context computation, on the reference workload of issue 6 (one webapp
//! instance of examples/bench/processes.nix, as its primop receives it).
//!
//!   CARGO_TARGET_DIR=… cargo bench -p nixproc-core --bench generators
//!
//! Every figure is the Rust side of one primop call; the C++ walk of the
//! Nix value and the rebuilding of the result are in the plugin's bench.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use nixproc_core::context;
use nixproc_core::primops;
use nixproc_core::value::Value;

mod workload;
use workload::*;

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
    let n: usize = 5000;
    let mut instances: Vec<Value> = (1..=n)
        .map(|i| {
            let deps = if i > 1 && !(i - 1).is_multiple_of(10) {
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
