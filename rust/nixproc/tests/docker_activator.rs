//! The docker backend end to end, without a docker daemon: a processes
//! model made with `createManagedProcess` is built with the Nix plugin (base
//! image included, by the static builder) and deployed by `nixproc switch
//! -P docker`, whose `docker` is a recording stand-in on PATH that keeps
//! images and containers as files. Checks the command plan of a first
//! deployment, a switch that changes one container, and an undeploy, and
//! that the arguments reach `docker create` verbatim.
//!
//! Needs the release build (`scripts/build.sh`): the static builder and a
//! plugin that has the docker generator — `$NIXPROC_PLUGIN`, else
//! `target/release/libnixproc_plugin.so`; `$NIXPROC_BUILDER`, else
//! `target/release/nixproc-builder`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn from_env_or(var: &str, default: &str) -> PathBuf {
    let p = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(default));
    assert!(
        p.exists(),
        "{} missing: run scripts/build.sh (or set {var})",
        p.display()
    );
    p
}

/// A `docker` that records each call (`docker <args>` on one line, and for
/// `create` every argument on its own line in `<container>.args`) and keeps
/// state in `$FAKE_DOCKER_DIR`.
const FAKE_DOCKER: &str = r#"#!/bin/sh
d="$FAKE_DOCKER_DIR"
echo "docker $*" >> "$d/log"
case "$1" in
  version) echo 28.2.2 ;;
  load)
    tar -tf "$3" | grep -qx manifest.json || { echo "invalid archive" >&2; exit 1; }
    echo "Loaded image ID: sha256:0000feed" ;;
  tag) touch "$d/images/$(echo "$3" | tr / _)" ;;
  image)
    case "$2" in
      inspect)
        f="$d/images/$(echo "$5" | tr / _)"
        [ -e "$f" ] && echo sha256:0000feed && exit 0
        echo "Error: No such image: $5" >&2; exit 1 ;;
      rm) rm "$d/images/$(echo "$3" | tr / _)" ;;
    esac ;;
  container)
    c="$d/containers/$5"
    [ -d "$c" ] || { echo "Error: No such container: $5" >&2; exit 1; }
    case "$4" in
      *Labels*) cat "$c/revision" ;;
      *Running*) cat "$c/running" ;;
    esac ;;
  create)
    shift
    for a in "$@"; do printf '%s\n' "$a"; done > "$d/create.args"
    name=; rev=; prev=
    for a in "$@"; do
      [ "$prev" = --name ] && name="$a"
      case "$prev:$a" in --label:nixproc.revision=*) rev="${a#nixproc.revision=}" ;; esac
      prev="$a"
    done
    mkdir "$d/containers/$name" || exit 1
    echo "$rev" > "$d/containers/$name/revision"
    echo false > "$d/containers/$name/running"
    mv "$d/create.args" "$d/$name.args" ;;
  start) echo true > "$d/containers/$2/running" ;;
  stop) echo false > "$d/containers/$4/running" ;;
  rm) rm -r "$d/containers/$2" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"#;

const MODEL: &str = r##"
{ processManager, stateDir ? "/var", forceDisableUserChange ? false, webFlag ? "1", nixproc }:
let
  lib = import nixproc { inherit processManager stateDir forceDisableUserChange; };
  hello = lib.writeScriptBin "hello" "#!/bin/sh\necho hi\n";
in rec {
  db = {
    pkg = lib.createManagedProcess {
      name = "db";
      process = "${hello}/bin/hello";
      args = [ "--say" "it's $(me) `x`; 100% \\ ünï" ];
      environment.GREETING = "a b 'c' \"d\"";
    };
  };
  web = {
    pkg = lib.createManagedProcess {
      name = "web";
      daemon = "${hello}/bin/hello";
      args = [ "--flag" webFlag ];
      nice = 5;
      dependencies = [ db.pkg ];
    };
  };
}
"##;

struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nixproc-docker-")
            .tempdir()
            .unwrap();
        let fake = dir.path().join("fake");
        std::fs::create_dir_all(fake.join("images")).unwrap();
        std::fs::create_dir_all(fake.join("containers")).unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        let docker = dir.path().join("bin/docker");
        std::fs::write(&docker, FAKE_DOCKER).unwrap();
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("model.nix"), MODEL).unwrap();
        Deployment { dir }
    }

    fn fake(&self) -> PathBuf {
        self.dir.path().join("fake")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn nixproc(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(env!("CARGO_BIN_EXE_nixproc"))
            .args(args)
            .arg("--state-dir")
            .arg(self.state())
            .arg("--force-disable-user-change")
            .env(
                "NIXPROC_PLUGIN",
                from_env_or("NIXPROC_PLUGIN", "target/release/libnixproc_plugin.so"),
            )
            .env(
                "NIXPROC_BUILDER",
                from_env_or("NIXPROC_BUILDER", "target/release/nixproc-builder"),
            )
            .env("FAKE_DOCKER_DIR", self.fake())
            .env("PATH", path)
            .output()
            .unwrap()
    }

    fn switch(&self, web_flag: &str) -> Output {
        let params = format!(
            "{{ webFlag = \"{web_flag}\"; nixproc = {}; }}",
            repo().join("nix").display()
        );
        let model = self.dir.path().join("model.nix");
        self.nixproc(&[
            "switch",
            "-P",
            "docker",
            "--extra-params",
            &params,
            model.to_str().unwrap(),
        ])
    }

    /// The docker calls since the last time, then forgets them.
    fn calls(&self) -> Vec<String> {
        let log = self.fake().join("log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines()
            .map(|l| {
                // Store paths and the caller's ids differ between runs.
                let mut out = String::new();
                for w in l.split(' ') {
                    let w = if let Some(rest) = w.strip_prefix("/nix/store/") {
                        let name = rest.split_once('-').map_or("", |(_, n)| n);
                        format!("<store>-{name}")
                    } else {
                        w.to_string()
                    };
                    let w = if w.starts_with("nixproc.revision=") {
                        "nixproc.revision=<rev>".to_string()
                    } else {
                        w
                    };
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(&w);
                }
                out
            })
            .collect()
    }

    fn create_args(&self, container: &str) -> Vec<String> {
        std::fs::read_to_string(self.fake().join(format!("{container}.args")))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "nixproc failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deploy_switch_undeploy_with_a_recording_docker() {
    let d = Deployment::new();
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let user = format!("{uid}:{gid}");
    let state = d.state().display().to_string();

    ok(&d.switch("1"));
    let calls = d.calls();
    let tag = calls[1]
        .strip_prefix("docker image inspect --format {{.Id}} ")
        .unwrap()
        .to_string();
    assert!(tag.starts_with("nixproc-base:"), "{tag}");
    assert_eq!(
        calls,
        [
            "docker version --format {{.Server.Version}}".to_string(),
            format!("docker image inspect --format {{{{.Id}}}} {tag}"),
            "docker load --input <store>-nixproc-docker-base.tar".into(),
            format!("docker tag sha256:0000feed {tag}"),
            "docker container inspect --format {{index .Config.Labels \"nixproc.revision\"}} nixproc-db".into(),
            format!(
                "docker create --user {user} --volume /nix/store:/nix/store:ro --network host \
                 --volume {state}:{state} --env GREETING=a b 'c' \"d\" --label \
                 nixproc.revision=<rev> --label nixproc.name=db --name nixproc-db {tag} \
                 <store>-hello/bin/hello --say it's $(me) `x`; 100% \\ ünï"
            ),
            "docker start nixproc-db".into(),
            "docker container inspect --format {{.State.Running}} nixproc-db".into(),
            format!("docker image inspect --format {{{{.Id}}}} {tag}"),
            "docker container inspect --format {{index .Config.Labels \"nixproc.revision\"}} nixproc-web".into(),
            format!(
                "docker create --user {user} --volume /nix/store:/nix/store:ro --network host \
                 --volume {state}:{state} --label nixproc.revision=<rev> --label \
                 nixproc.name=web --name nixproc-web {tag} <store>-nixproc-builder \
                 foreground-proxy --nice 5 --wrap-daemon --pidfile {state}/run/hello.pid -- \
                 <store>-hello/bin/hello --flag 1"
            ),
            "docker start nixproc-web".into(),
            "docker container inspect --format {{.State.Running}} nixproc-web".into(),
        ]
    );
    // Each argument arrived as one argv word, byte for byte.
    let db = d.create_args("nixproc-db");
    assert!(db.contains(&"GREETING=a b 'c' \"d\"".to_string()), "{db:?}");
    assert_eq!(db.last().unwrap(), "it's $(me) `x`; 100% \\ ünï");

    // Only web changes: only web is replaced; the image stays.
    ok(&d.switch("2"));
    let calls = d.calls();
    assert_eq!(calls[0], "docker version --format {{.Server.Version}}");
    assert_eq!(
        calls[1..3],
        ["docker stop -t 10 nixproc-web", "docker rm nixproc-web"]
    );
    assert!(
        calls[3..].iter().all(|c| !c.contains("nixproc-db")),
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| !c.starts_with("docker load")));
    assert!(calls.last().unwrap().ends_with("nixproc-web"));
    assert!(d.create_args("nixproc-web").contains(&"2".to_string()));

    // Undeploy: dependents first, then the unused image.
    ok(&d.nixproc(&["switch", "-P", "docker", "--undeploy"]));
    let calls = d.calls();
    assert_eq!(
        calls[1..],
        [
            "docker stop -t 10 nixproc-web".to_string(),
            "docker rm nixproc-web".into(),
            "docker stop -t 10 nixproc-db".into(),
            "docker rm nixproc-db".into(),
            format!("docker image rm {tag}"),
        ]
    );
    assert_eq!(
        std::fs::read_dir(d.fake().join("containers"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(d.fake().join("images")).unwrap().count(),
        0
    );
}
