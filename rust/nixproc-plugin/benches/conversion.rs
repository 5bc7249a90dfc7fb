//! Criterion benchmarks of the plugin's Rust side of a primop call, without
//! Nix: rebuilding the argument from the walker's calls ([`InBuilder`]),
//! the whole call (rebuild, context index, generator, context per output
//! string, output tape) and the output tape alone. The C++ walk over Nix
//! values and `fromTape` need a running evaluator; the workflow figures
//! (scripts/bench-workflow.sh) include them.
//!
//!   CARGO_TARGET_DIR=… cargo bench -p nixproc-plugin --bench conversion

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use nixproc_core::primops;
use nixproc_plugin::{bench_primop_call, bench_rebuild, bench_tape};

#[path = "../../nixproc-core/benches/workload/mod.rs"]
mod workload;
use workload::*;

fn conversion(c: &mut Criterion) {
    let mut g = c.benchmark_group("plugin");
    for backend in ["sysvinit", "supervisord", "systemd"] {
        let input = managed_process(backend, 5);
        g.bench_function(format!("rebuild/{backend}"), |b| {
            b.iter(|| bench_rebuild(black_box(&input), STORE).unwrap())
        });
        g.bench_function(format!("call/{backend}"), |b| {
            b.iter(|| bench_primop_call("createManagedProcess", black_box(&input), STORE).unwrap())
        });
        let output = primops::call("createManagedProcess", &input).unwrap();
        g.bench_function(format!("tape/{backend}"), |b| {
            b.iter_batched(|| output.clone(), bench_tape, BatchSize::SmallInput)
        });
    }
    g.finish();
}

criterion_group!(benches, conversion);
criterion_main!(benches);
