//! The profile manifest (`nix-support/nixproc/manifest.json`): what the
//! deploy engine reads to diff two profiles and to drive the backend.

use serde::{Deserialize, Serialize};

use crate::lifecycle::{Readiness, StateSpec};

pub const MANIFEST_PATH: &str = "nix-support/nixproc/manifest.json";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub version: u32,
    pub process_manager: String,
    /// In dependency order (dependencies first), as validated at build time.
    pub instances: Vec<InstanceEntry>,
}

/// One deployed process instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceEntry {
    /// The attribute name in the processes model (filled by the profile
    /// builder; empty for a package built on its own).
    #[serde(default)]
    pub key: String,
    /// The process name, unique within a profile.
    pub name: String,
    pub description: String,
    /// Content digest of the package (see `package::revision`); equal
    /// revisions mean "unchanged, do not touch".
    #[serde(default)]
    pub revision: String,
    /// Names of the processes this one depends on.
    pub dependencies: Vec<String>,
    /// PID file the process writes or is tracked by, when known.
    pub pid_file: Option<String>,
    /// Where the process output goes, when nixproc decides it.
    pub log_file: Option<String>,
    /// The user the process runs as (after `forceDisableUserChange`).
    pub user: Option<String>,
    pub backend: Backend,
    /// Declared state units, schema and rollback policy (see
    /// [`crate::lifecycle`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
    /// Checks a switch waits for after starting the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
}

/// Backend-specific facts the activator needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Backend {
    #[serde(rename_all = "camelCase")]
    Sysvinit {
        /// Relative path of the init script inside the profile.
        script: String,
        /// Runlevels with an `S` link.
        start_runlevels: Vec<u32>,
        sequence: u32,
    },
    /// A supervisord program; its name is the instance name.
    #[serde(rename_all = "camelCase")]
    Supervisord {
        /// Relative path of the program's config (`conf.d/<name>.conf`).
        config: String,
        /// supervisord start priority (dependencies have lower ones).
        priority: u32,
    },
    /// A systemd unit; the instance name is the unit name without `.service`.
    #[serde(rename_all = "camelCase")]
    Systemd {
        /// The unit file name (`nix-process-<name>.service`).
        unit: String,
        /// Relative path of the unit file (`etc/systemd/system/<unit>`).
        path: String,
    },
    /// An s6-rc service (source directory format); the instance name is the
    /// service name (`<name>-srv` for a longrun with a log companion).
    #[serde(rename_all = "camelCase")]
    S6Rc {
        kind: S6Kind,
        /// Relative path of the service directory (`etc/s6/sv/<service>`).
        dir: String,
        /// Relative path of the companion log service's directory, if any.
        log_dir: Option<String>,
    },
    /// A FreeBSD rc.d script; ordering comes from the manifest (the
    /// `REQUIRE:` lines say the same for `rcorder`).
    #[serde(rename_all = "camelCase")]
    Bsdrc {
        /// Relative path of the script (`etc/rc.d/<name>`).
        script: String,
    },
    /// A launchd job.
    #[serde(rename_all = "camelCase")]
    Launchd {
        /// `Label` of the job (`<prefix><name>`).
        label: String,
        /// Relative path of the plist (`Library/LaunchDaemons/<label>.plist`
        /// or `Library/LaunchAgents/…`).
        plist: String,
    },
    /// A Windows service installed with cygrunsrv.
    #[serde(rename_all = "camelCase")]
    Cygrunsrv {
        /// The service name (`<prefix><name>`).
        service: String,
        /// Relative path of the parameters file (one cygrunsrv argument per
        /// line).
        params: String,
    },
    /// A docker container sharing the host's network and Nix store.
    #[serde(rename_all = "camelCase")]
    Docker {
        /// The container name (`nixproc-<name>`).
        container: String,
        /// The image tag the container is created from (`<name>:latest`).
        image_tag: String,
        /// Store path of the image tarball (`docker load -i`).
        image: String,
        /// Relative path of the `docker create` arguments file (one per line).
        create_params: String,
        /// Start priority (1 without dependencies, else max of theirs + 1).
        priority: u32,
    },
    /// A Dysnomia `process` component: a program that daemonizes and writes
    /// a PID file.
    #[serde(rename_all = "camelCase")]
    Disnix {
        /// Relative path of the component file (`etc/dysnomia/process/<name>`).
        component: String,
        /// The program to run (`process=` of the component).
        process: String,
    },
}

/// The s6-rc service types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum S6Kind {
    Longrun,
    Oneshot,
    Bundle,
}

impl Manifest {
    pub fn empty(process_manager: &str) -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            process_manager: process_manager.to_string(),
            instances: Vec::new(),
        }
    }
}
