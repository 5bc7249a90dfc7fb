//! `docker-base-image`: the one base image every nixproc container is
//! created from (see `nixproc_core::docker`), written as a `docker
//! load`-able archive (the `docker save` layout: `manifest.json`, the image
//! config `<sha256>.json`, one `<sha256>/layer.tar`).
//!
//! The layer holds only what a process expects of a root file system when
//! the store, the network and the state directory come from the host:
//!
//! ```text
//! etc/            0755
//! etc/group       0644  root (0), nogroup (65534)
//! etc/passwd      0644  root (0), nobody (65534)
//! run/            0755
//! tmp/            1777
//! var/            0755
//! var/run  ->  /run
//! ```
//!
//! The config has no `Cmd` (the container's command is given to `docker
//! create`) and the archive no `RepoTags` (the activator tags the loaded
//! image with the tag of the manifest). Built without `runAsRoot` or a VM
//! (defect 27) and byte for byte reproducible: entries sorted, owner 0:0,
//! mtime 0, ustar headers, JSON with a fixed key order, "created" at the
//! epoch.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

/// The `/etc/passwd` of the image.
pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                          nobody:x:65534:65534:nobody:/var/empty:/sbin/nologin\n";

/// The `/etc/group` of the image.
pub const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

const EPOCH: &str = "1970-01-01T00:00:00Z";

/// One entry of a tar archive.
enum Entry<'a> {
    Dir {
        path: &'a str,
        mode: u32,
    },
    File {
        path: &'a str,
        mode: u32,
        data: &'a [u8],
    },
    Symlink {
        path: &'a str,
        target: &'a str,
    },
}

/// The docker architecture name of a Nix system or Rust target
/// architecture (`x86_64-linux` → `amd64`).
pub fn docker_architecture(system: &str) -> Result<&'static str> {
    let arch = system.split('-').next().unwrap_or("");
    Ok(match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" | "x86" => "386",
        "armv7l" | "armv7" | "arm" => "arm",
        "powerpc64le" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => bail!("no docker architecture is known for {other:?} (from {system:?})"),
    })
}

/// Writes the archive for `architecture` (a docker name such as `amd64`)
/// to `out`.
pub fn build(out: &Path, architecture: &str) -> Result<()> {
    let bytes = archive(architecture)?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

/// The whole `docker load` archive.
pub fn archive(architecture: &str) -> Result<Vec<u8>> {
    let layer = layer()?;
    let diff_id = hex::encode(Sha256::digest(&layer));
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "created": EPOCH,
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
        "history": [{ "created": EPOCH, "created_by": "nixproc-builder docker-base-image" }],
    });
    let config = serde_json::to_vec(&config)?;
    let config_id = hex::encode(Sha256::digest(&config));
    let config_name = format!("{config_id}.json");
    let layer_dir = format!("{diff_id}/");
    let layer_name = format!("{diff_id}/layer.tar");
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": null,
        "Layers": [layer_name],
    }]))?;
    let mut entries = vec![
        Entry::File {
            path: &config_name,
            mode: 0o444,
            data: &config,
        },
        Entry::Dir {
            path: &layer_dir,
            mode: 0o755,
        },
        Entry::File {
            path: &layer_name,
            mode: 0o444,
            data: &layer,
        },
        Entry::File {
            path: "manifest.json",
            mode: 0o444,
            data: &manifest,
        },
    ];
    entries.sort_by(|a, b| entry_path(a).cmp(entry_path(b)));
    tar(&entries)
}

/// The image's only layer.
pub fn layer() -> Result<Vec<u8>> {
    tar(&[
        Entry::Dir {
            path: "etc/",
            mode: 0o755,
        },
        Entry::File {
            path: "etc/group",
            mode: 0o644,
            data: GROUP.as_bytes(),
        },
        Entry::File {
            path: "etc/passwd",
            mode: 0o644,
            data: PASSWD.as_bytes(),
        },
        Entry::Dir {
            path: "run/",
            mode: 0o755,
        },
        Entry::Dir {
            path: "tmp/",
            mode: 0o1777,
        },
        Entry::Dir {
            path: "var/",
            mode: 0o755,
        },
        Entry::Symlink {
            path: "var/run",
            target: "/run",
        },
    ])
}

fn entry_path<'a>(e: &Entry<'a>) -> &'a str {
    match e {
        Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => path,
    }
}

/// A ustar archive of `entries` (in the given order): owner 0:0, no user
/// or group names, mtime 0, two zero blocks at the end.
fn tar(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        let (path, mode, kind, size, link, data): (&str, u32, u8, usize, &str, &[u8]) = match e {
            Entry::Dir { path, mode } => (path, *mode, b'5', 0, "", &[]),
            Entry::File { path, mode, data } => (path, *mode, b'0', data.len(), "", data),
            Entry::Symlink { path, target } => (path, 0o777, b'2', 0, target, &[]),
        };
        if path.len() > 100 || link.len() > 100 {
            bail!("tar entry {path:?} -> {link:?}: name longer than 100 bytes");
        }
        let mut h = [0u8; 512];
        h[..path.len()].copy_from_slice(path.as_bytes());
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size as u64);
        octal(&mut h[136..148], 0);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        octal(&mut h[329..337], 0);
        octal(&mut h[337..345], 0);
        // The checksum is computed with its own field as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let field = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(field.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.resize(out.len() + pad, 0);
    }
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// A NUL-terminated, zero-padded octal number filling `field`.
fn octal(field: &mut [u8], n: u64) {
    let digits = field.len() - 1;
    let s = format!("{n:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures() {
        assert_eq!(docker_architecture("x86_64-linux").unwrap(), "amd64");
        assert_eq!(docker_architecture("aarch64-linux").unwrap(), "arm64");
        assert_eq!(docker_architecture("x86_64").unwrap(), "amd64");
        assert!(docker_architecture("mips-linux").is_err());
    }

    #[test]
    fn headers_are_valid_ustar() {
        let layer = layer().unwrap();
        assert_eq!(layer.len() % 512, 0);
        let h = &layer[..512];
        assert_eq!(&h[..4], b"etc/");
        assert_eq!(&h[257..263], b"ustar\0");
        let stored = u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| u64::from(b)).sum::<u64>());
    }

    #[test]
    fn long_names_are_refused() {
        let long = "x".repeat(101);
        assert!(tar(&[Entry::Dir {
            path: &long,
            mode: 0o755
        }])
        .is_err());
    }
}
