//! Snapshot and restore throughput of a directory unit, beside plain
//! `tar | zstd -3` (and `zstd -d | tar x`) on the same data.
//!
//! ```sh
//! cargo run --release -p nixproc-state --example throughput -- [SIZE_MB] [WORK_DIR]
//! ```
//!
//! Defaults: 1024 MB in a temporary directory under `$TMPDIR`. The data is
//! 4 MiB files, each half pseudo-random bytes and half repetitive text
//! (roughly 2:1 compressible). Prints MB/s of the plaintext size.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use nixproc_core::lifecycle::{Consistency, RollbackPolicy, StateSpec, StateUnit, UnitKind};
use nixproc_state::format::Reason;
use nixproc_state::keys::{KeyConfig, Keys};
use nixproc_state::store::{SnapshotRequest, StateStore};

fn fill(dir: &Path, mb: u64) {
    fs::create_dir_all(dir).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let file_mb = 4;
    let line = b"2026-05-12T10:15:00Z INFO request handled path=/guestbook status=200\n";
    for i in 0..mb.div_ceil(file_mb) {
        let sub = dir.join(format!("d{:02}", i % 16));
        fs::create_dir_all(&sub).unwrap();
        let mut f =
            std::io::BufWriter::new(fs::File::create(sub.join(format!("f{i:05}"))).unwrap());
        let mut block = vec![0u8; 4096];
        for _ in 0..(file_mb << 20) / 4096 {
            for chunk in block[..2048].chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            for (j, b) in block[2048..].iter_mut().enumerate() {
                *b = line[j % line.len()];
            }
            f.write_all(&block).unwrap();
        }
    }
}

fn rate(mb: u64, secs: f64) -> String {
    format!("{:7.1} MB/s ({secs:.2} s)", mb as f64 * 1.048_576 / secs)
}

fn sh(script: &str) -> f64 {
    let t = Instant::now();
    let ok = Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .unwrap()
        .success();
    assert!(ok, "{script}");
    t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: u64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1024);
    let tmp;
    let work: PathBuf = match args.get(2) {
        Some(p) => PathBuf::from(p),
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    let live = work.join("live");
    eprintln!("generating {mb} MB in {}", live.display());
    fill(&live, mb);
    let _ = Command::new("sync").status();
    let keys = Keys::load(&KeyConfig {
        host_identity: work.join("id.txt"),
        create_host_identity: true,
        ..Default::default()
    })
    .unwrap();
    let spec = StateSpec {
        units: [(
            "data".to_string(),
            StateUnit {
                kind: UnitKind::Directory {
                    path: live.to_string_lossy().into_owned(),
                    exclude: vec![],
                },
                consistency: Consistency::Stop,
            },
        )]
        .into(),
        schema: None,
        rollback: RollbackPolicy::Ask,
    };
    let store = StateStore::open(&work.join("store")).unwrap();
    let t = Instant::now();
    let m = store
        .snapshot(
            SnapshotRequest {
                instance: "bench",
                spec: &spec,
                revision: "r1",
                profile: None,
                generation: None,
                next_revision: None,
                reason: Reason::Manual,
                tag: None,
                run_as: None,
            },
            &keys,
        )
        .unwrap();
    let snap = t.elapsed().as_secs_f64();
    let stored = m.units["data"].size;
    let t = Instant::now();
    store.restore(&m.id, &spec, &keys, None, None).unwrap();
    let restore = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let r = store.verify(&m.id, Some(&keys)).unwrap();
    let verify = t.elapsed().as_secs_f64();
    assert!(r.problems.is_empty());
    let plain = work.join("plain.tar.zst");
    let out = work.join("plain-out");
    fs::create_dir_all(&out).unwrap();
    let tar_zstd = sh(&format!(
        "tar -C '{}' -cf - . | zstd -3 -q -T1 -o '{}' && sync '{}'",
        live.display(),
        plain.display(),
        plain.display()
    ));
    let untar = sh(&format!(
        "zstd -d -q -c '{}' | tar -C '{}' -xf - && sync",
        plain.display(),
        out.display()
    ));
    println!(
        "directory unit, {mb} MB plaintext, stored {:.1} MB (zstd-3 + age)",
        stored as f64 / 1e6
    );
    println!("nixproc snapshot        {}", rate(mb, snap));
    println!("nixproc restore         {}", rate(mb, restore));
    println!("nixproc verify --deep   {}", rate(mb, verify));
    println!("tar | zstd -3 (T1)      {}", rate(mb, tar_zstd));
    println!("zstd -d | tar x         {}", rate(mb, untar));
}
