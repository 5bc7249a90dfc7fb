//! Many round trips with a tiny GC heap: conversion must survive collections
//! (no GC pointer may live outside GC-scanned memory).
mod common;

use common::*;
use serde_json::json;

#[test]
fn five_thousand_round_trips_with_a_small_heap() {
    let out = nix_instantiate()
        .env("GC_INITIAL_HEAP_SIZE", "1M")
        .env("NIX_SHOW_STATS", "1")
        .args(["--eval", "--strict", "--json"])
        .arg(fixture("gc-stress.nix"))
        .args(["--arg", "n", "5000"])
        .output()
        .unwrap();
    let v = json_of(&out, "gc-stress.nix");
    assert_eq!(v, json!({ "count": 5000, "failures": 0, "ok": true }));

    // The statistics (JSON on stderr) show that collections did happen:
    // far more was allocated than the heap ever held.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let start = stderr.find('{').expect("NIX_SHOW_STATS output");
    let stats: serde_json::Value = serde_json::from_str(&stderr[start..]).expect("stats JSON");
    let heap = stats["gc"]["heapSize"].as_u64().unwrap();
    let total = stats["gc"]["totalBytes"].as_u64().unwrap();
    assert!(total > 4 * heap, "heap {heap}, allocated {total}");
}
