//! "Readable without us": the Debian `age`, `zstd` and `tar` binaries
//! decrypt and unpack what the store wrote. Skipped (with a message) when
//! a tool is missing.

mod common;

use std::fs;
use std::process::Command;

use common::*;
use nixproc_state::store::StateStore;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn age_zstd_tar_read_a_unit_file() {
    for tool in ["age", "zstd", "tar", "sh"] {
        if !have(tool) {
            eprintln!("skipped: `{tool}` is not on PATH");
            return;
        }
    }
    let t = tempfile::tempdir().unwrap();
    let live = t.path().join("data");
    write(&live.join("a.txt"), b"hello");
    write(
        &live.join("d\u{e9}j\u{e0} vu/b"),
        &(0..=255u8).collect::<Vec<_>>(),
    );
    fs::create_dir_all(live.join("empty")).unwrap();
    std::os::unix::fs::symlink("a.txt", live.join("link")).unwrap();
    let (keys, cfg) = host_keys(t.path());
    let store = StateStore::open(&t.path().join("store")).unwrap();
    let spec = spec(vec![("files", dir_unit(&live))]);
    let m = store
        .snapshot(req("web", &spec, "r1", None), &keys)
        .unwrap();
    let obj = object_dir(store.root(), &m.id);
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let script = format!(
        "set -e -o pipefail 2>/dev/null || set -e; age -d -i '{}' '{}' | zstd -d | tar -x -C '{}'",
        cfg.host_identity.display(),
        obj.join(&m.units["files"].file).display(),
        out.display()
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(walk(&out), walk(&live));
    // The secret manifest too.
    let o = Command::new("age")
        .args(["-d", "-i"])
        .arg(&cfg.host_identity)
        .arg(obj.join("secret.json.age"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let secret: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        secret["plaintextSha256"]["files"].as_str().unwrap().len(),
        64
    );
    // The stored zstd frame carries a checksum (zstd -lv says so).
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "age -d -i '{}' '{}' > '{}/u.zst' && zstd -lv '{}/u.zst'",
            cfg.host_identity.display(),
            obj.join(&m.units["files"].file).display(),
            t.path().display(),
            t.path().display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Check: XXH64"), "{text}");
}
