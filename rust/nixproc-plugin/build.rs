//! Builds the C++ side of the plugin (cxx bridge + `cpp-shim/plugin.cc`)
//! against the Nix headers of exactly one Nix version.
//!
//! Header discovery, in order:
//! 1. `NIX_INCLUDE_DIR`: the directory that *contains* `nix/` (pkg-config's
//!    `${includedir}`); both it and `$NIX_INCLUDE_DIR/nix` are searched.
//! 2. pkg-config `nix-expr` (with `/usr/lib/nix/pkgconfig` added, where
//!    Debian puts the `.pc` files), if `eval.hh` really exists there.
//! 3. `/usr/local/include/nix/eval.hh`, where `scripts/setup.sh` installs the
//!    headers from `apt-get source nix`.
//!
//! The Nix version comes from `NIX_VERSION` or `nix-instantiate --version`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const NIX_LIB_DIR_DEFAULT: &str = "/usr/lib/nix";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo_root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("rust/nixproc-plugin lives two levels below the repository root")
        .to_path_buf();
    let shim = repo_root.join("cpp-shim");

    for var in [
        "NIX_INCLUDE_DIR",
        "NIX_VERSION",
        "NIX_LIB_DIR",
        "PKG_CONFIG_PATH",
        "CXX",
        "CXXFLAGS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for f in ["shim.h", "compat.hh", "plugin.cc"] {
        println!("cargo:rerun-if-changed={}", shim.join(f).display());
    }
    println!("cargo:rerun-if-changed=src/lib.rs");

    let (include_dirs, lib_dirs) = find_nix();
    let version = nix_version();
    let num = version_num(&version);
    let std = if num < 21400 {
        "-std=c++17"
    } else if num < 23100 {
        "-std=c++20"
    } else {
        "-std=c++23"
    };

    let mut build = cxx_build::bridge("src/lib.rs");
    build
        .file(shim.join("plugin.cc"))
        .include(&repo_root)
        .flag(std)
        .pic(true)
        .define("NIX_VERSION_NUM", num.to_string().as_str())
        .define("NIXPROC_NIX_VERSION", format!("\"{version}\"").as_str())
        // Nix headers are noisy; our own code is still checked.
        .flag_if_supported("-Wno-deprecated-declarations")
        // designated initialisers of Nix structs leave optional fields out
        .flag_if_supported("-Wno-missing-field-initializers")
        .warnings(true);
    for dir in &include_dirs {
        build
            .flag("-isystem")
            .flag(dir.to_str().expect("UTF-8 include path"));
    }
    build.compile("nixproc_plugin_shim");

    for dir in &lib_dirs {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    for lib in ["nixexpr", "nixstore", "nixutil", "gc"] {
        println!("cargo:rustc-link-lib=dylib={lib}");
    }
    // rustc-link-arg (not rustc-cdylib-link-arg): test binaries need the rpath too.
    for dir in &lib_dirs {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    println!("cargo:rustc-env=NIXPROC_NIX_VERSION={version}");
}

/// Returns the include directories to pass with `-isystem` (the one
/// containing `nix/` and `nix/` itself) and the Nix library directories.
fn find_nix() -> (Vec<PathBuf>, Vec<PathBuf>) {
    let lib_dir = PathBuf::from(env::var("NIX_LIB_DIR").unwrap_or(NIX_LIB_DIR_DEFAULT.into()));

    if let Some(dir) = env::var_os("NIX_INCLUDE_DIR") {
        let dir = PathBuf::from(dir);
        if !has_eval_hh(&dir) {
            fail(&format!(
                "NIX_INCLUDE_DIR={} has neither nix/eval.hh nor nix/expr/eval.hh; it must be \
                 the directory that contains nix/ (scripts/setup.sh installs the headers into \
                 /usr/local/include/nix)",
                dir.display()
            ));
        }
        return (vec![dir.join("nix"), dir], vec![lib_dir]);
    }

    // pkg-config: Debian's .pc files are in /usr/lib/nix/pkgconfig.
    let mut pc_path = env::var("PKG_CONFIG_PATH").unwrap_or_default();
    if !pc_path.split(':').any(|p| p == "/usr/lib/nix/pkgconfig") {
        if !pc_path.is_empty() {
            pc_path.push(':');
        }
        pc_path.push_str("/usr/lib/nix/pkgconfig");
    }
    env::set_var("PKG_CONFIG_PATH", &pc_path);
    if let Ok(lib) = pkg_config::Config::new()
        .cargo_metadata(false)
        .env_metadata(false)
        .probe("nix-expr")
    {
        // includedir/nix is what the .pc reports; accept either form.
        for inc in &lib.include_paths {
            let candidates = [
                inc.clone(),
                inc.parent().map(Path::to_path_buf).unwrap_or_default(),
            ];
            for c in candidates {
                if has_eval_hh(&c) {
                    let mut libs = lib.link_paths.clone();
                    if !libs.contains(&lib_dir) {
                        libs.push(lib_dir.clone());
                    }
                    return (vec![c.join("nix"), c], libs);
                }
            }
        }
    }

    let local = PathBuf::from("/usr/local/include");
    if has_eval_hh(&local) {
        return (vec![local.join("nix"), local], vec![lib_dir]);
    }

    fail(
        "cannot find the Nix C++ headers (eval.hh). Debian's nix-bin ships none and its \
         nix-expr.pc points at a missing /usr/include/nix. Run scripts/setup.sh as root \
         (it installs them into /usr/local/include/nix via `apt-get source nix`), or set \
         NIX_INCLUDE_DIR to the directory that contains nix/eval.hh (or nix/expr/eval.hh) \
         and NIX_VERSION to the matching Nix version.",
    );
}

fn has_eval_hh(dir: &Path) -> bool {
    dir.join("nix/eval.hh").is_file() || dir.join("nix/expr/eval.hh").is_file()
}

fn nix_version() -> String {
    if let Ok(v) = env::var("NIX_VERSION") {
        let v = v.trim().to_string();
        if !v.is_empty() {
            return v;
        }
    }
    let out = Command::new("nix-instantiate").arg("--version").output();
    match out {
        Ok(o) if o.status.success() => {
            // "nix-instantiate (Nix) 2.8.0"
            let s = String::from_utf8_lossy(&o.stdout);
            match s.split_whitespace().last() {
                Some(v) if v.chars().next().is_some_and(|c| c.is_ascii_digit()) => v.to_string(),
                _ => fail(&format!(
                    "cannot parse `nix-instantiate --version` output {s:?}; set NIX_VERSION"
                )),
            }
        }
        _ => fail("cannot run `nix-instantiate --version`; set NIX_VERSION (e.g. 2.8.0)"),
    }
}

/// `2.8.0` → 20800; `2.18.1pre` → 21801.
fn version_num(v: &str) -> u32 {
    let mut parts = v.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    if major == 0 {
        fail(&format!("unrecognised Nix version {v:?}"));
    }
    major * 10000 + minor * 100 + patch.min(99)
}

fn fail(msg: &str) -> ! {
    eprintln!("error: nixproc-plugin: {msg}");
    panic!("nixproc-plugin build failed: {msg}");
}
