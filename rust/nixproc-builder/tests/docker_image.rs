//! `docker-base-image`: the archive has the `docker save` layout with the
//! expected layer, is byte-identical across builds, is read by GNU tar
//! exactly as we read it, and — where a docker daemon answers — loads.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_nixproc-builder");

/// One entry of a ustar archive, as read back by [`read_tar`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    link: String,
    data: Vec<u8>,
}

fn field(h: &[u8]) -> String {
    let end = h.iter().position(|&b| b == 0).unwrap_or(h.len());
    String::from_utf8(h[..end].to_vec()).unwrap()
}

fn num(h: &[u8]) -> u64 {
    u64::from_str_radix(field(h).trim(), 8).unwrap()
}

/// A minimal ustar reader; checks every header checksum.
fn read_tar(bytes: &[u8]) -> Vec<Entry> {
    assert_eq!(bytes.len() % 512, 0, "archive length");
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        if h.iter().all(|&b| b == 0) {
            assert!(bytes[at..].iter().all(|&b| b == 0), "data after the end");
            assert!(bytes.len() - at >= 1024, "two zero blocks at the end");
            return out;
        }
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(
            num(&h[148..156]),
            copy.iter().map(|&b| u64::from(b)).sum::<u64>()
        );
        assert_eq!(&h[257..263], b"ustar\0");
        let size = num(&h[124..136]) as usize;
        let data = bytes[at + 512..at + 512 + size].to_vec();
        out.push(Entry {
            path: field(&h[..100]),
            kind: h[156] as char,
            mode: num(&h[100..108]) as u32,
            uid: num(&h[108..116]),
            gid: num(&h[116..124]),
            mtime: num(&h[136..148]),
            link: field(&h[157..257]),
            data,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("no end-of-archive blocks");
}

fn build(dir: &Path, name: &str, system: Option<&str>) -> PathBuf {
    let out = dir.join(name);
    let mut cmd = Command::new(BIN);
    cmd.arg("docker-base-image").env("out", &out);
    if let Some(s) = system {
        cmd.args(["--system", s]);
    }
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

#[test]
fn archive_has_the_docker_save_layout() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(build(dir.path(), "image.tar", Some("x86_64-linux"))).unwrap();
    let entries = read_tar(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries are sorted");
    for e in &entries {
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{}", e.path);
    }

    let get = |p: &str| entries.iter().find(|e| e.path == p).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&get("manifest.json").data).unwrap();
    let m = &manifest.as_array().unwrap()[0];
    assert_eq!(m["RepoTags"], serde_json::Value::Null);
    let config_name = m["Config"].as_str().unwrap();
    let layer_name = m["Layers"][0].as_str().unwrap();
    assert_eq!(m["Layers"].as_array().unwrap().len(), 1);

    // Content addressing: the config file is named by its digest, the layer
    // directory by the layer's (the diff id in the config).
    let config_bytes = &get(config_name).data;
    assert_eq!(config_name, format!("{}.json", sha256(config_bytes)));
    let layer = &get(layer_name).data;
    let diff_id = sha256(layer);
    assert_eq!(layer_name, format!("{diff_id}/layer.tar"));
    assert_eq!(get(&format!("{diff_id}/")).kind, '5');

    let config: serde_json::Value = serde_json::from_slice(config_bytes).unwrap();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"][0], format!("sha256:{diff_id}"));
    assert_eq!(config["config"], serde_json::json!({}), "no Cmd, no Env");

    let layer = read_tar(layer);
    let summary: Vec<(String, char, u32, String)> = layer
        .iter()
        .map(|e| (e.path.clone(), e.kind, e.mode, e.link.clone()))
        .collect();
    let s = |p: &str, k: char, m: u32, l: &str| (p.to_string(), k, m, l.to_string());
    assert_eq!(
        summary,
        [
            s("etc/", '5', 0o755, ""),
            s("etc/group", '0', 0o644, ""),
            s("etc/passwd", '0', 0o644, ""),
            s("run/", '5', 0o755, ""),
            s("tmp/", '5', 0o1777, ""),
            s("var/", '5', 0o755, ""),
            s("var/run", '2', 0o777, "/run"),
        ]
    );
    let text = |p: &str| {
        String::from_utf8(layer.iter().find(|e| e.path == p).unwrap().data.clone()).unwrap()
    };
    assert_eq!(
        text("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/var/empty:/sbin/nologin\n"
    );
    assert_eq!(text("etc/group"), "root:x:0:\nnogroup:x:65534:\n");
}

#[test]
fn builds_are_byte_identical_and_follow_the_system() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::fs::read(build(dir.path(), "a.tar", Some("x86_64-linux"))).unwrap();
    let b = std::fs::read(build(dir.path(), "b.tar", Some("x86_64-linux"))).unwrap();
    assert_eq!(a, b);
    let arm = std::fs::read(build(dir.path(), "arm.tar", Some("aarch64-linux"))).unwrap();
    assert_ne!(a, arm);
    // Without --system: this binary's architecture.
    build(dir.path(), "native.tar", None);

    let o = Command::new(BIN)
        .args(["docker-base-image", "--system", "mips-linux"])
        .env("out", dir.path().join("x"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "nixproc-builder: no docker architecture is known for \"mips\" (from \"mips-linux\")\n"
    );
}

#[test]
fn gnu_tar_reads_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let image = build(dir.path(), "image.tar", Some("x86_64-linux"));
    let list = |archive: &Path| -> Vec<String> {
        let o = Command::new("tar")
            .arg("-tvf")
            .arg(archive)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let outer = list(&image);
    assert_eq!(outer.len(), 4);
    assert!(outer.iter().all(|l| l.contains(" 0/0 ")), "{outer:?}");

    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let o = Command::new("tar")
        .arg("-xf")
        .arg(&image)
        .arg("-C")
        .arg(&x)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let layer = std::fs::read_dir(&x)
        .unwrap()
        .map(|e| e.unwrap().path().join("layer.tar"))
        .find(|p| p.exists())
        .unwrap();
    let inner = list(&layer);
    let modes: Vec<String> = inner
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", f[0], f[5..].join(" "))
        })
        .collect();
    assert_eq!(
        modes,
        [
            "drwxr-xr-x etc/",
            "-rw-r--r-- etc/group",
            "-rw-r--r-- etc/passwd",
            "drwxr-xr-x run/",
            "drwxrwxrwt tmp/",
            "drwxr-xr-x var/",
            "lrwxrwxrwx var/run -> /run",
        ]
    );
}

/// Only where a docker daemon answers (not on this project's machines).
#[test]
fn docker_loads_it_when_a_daemon_answers() {
    let reachable = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        eprintln!("no docker daemon: docker load not exercised");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = build(dir.path(), "image.tar", None);
    let o = Command::new("docker")
        .arg("load")
        .arg("--input")
        .arg(&image)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Loaded image ID: sha256:"), "{stdout}");
}
