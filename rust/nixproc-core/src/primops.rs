//! The registry of primops. The plugin registers every entry under
//! `builtins.<name>`; builder mode looks the same names up. Adding a backend
//! means adding a line here, never touching C++.

use crate::error::Result;
use crate::package::PackageSpec;
use crate::value::Value;

pub struct PrimOp {
    /// Nix-visible name (`builtins.<name>`).
    pub name: &'static str,
    /// Markdown documentation shown by `nix repl :doc` on newer Nix.
    pub doc: &'static str,
    pub fun: fn(&Value) -> Result<Value>,
}

pub static PRIMOPS: &[PrimOp] = &[
    PrimOp {
        name: "createSystemVInitScript",
        doc: "Generate an LSB init script package (files, rcN.d links, manifest entry) \
              from nix-processmgmt's createSystemVInitScript parameters.",
        fun: |v| {
            crate::lifecycle::generate(v, crate::sysvinit::create_systemv_init_script)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createManagedProcess",
        doc: "Generate a process package for `processManager` from nix-processmgmt's \
              process-manager-agnostic parameters (createManagedProcess), with \
              `overrides.<pm>` attrsets deep-merged into the translated arguments.",
        fun: |v| crate::agnostic::create_managed_process(v).map(PackageSpec::into_value),
    },
    PrimOp {
        name: "nixprocTranslateManagedProcess",
        doc: "Translate createManagedProcess parameters into the arguments of the \
              selected backend's create function (before overrides).",
        fun: crate::agnostic::translate_managed_process,
    },
    PrimOp {
        name: "createSupervisordProgram",
        doc: "Generate a supervisord program package (conf.d/<name>.conf).",
        fun: |v| {
            crate::lifecycle::generate(v, crate::supervisord::create_supervisord_program)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createSystemdService",
        doc: "Generate a systemd service unit package.",
        fun: |v| {
            crate::lifecycle::generate(v, crate::systemd::create_systemd_service)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createS6RCService",
        doc: "Generate an s6-rc service (longrun, oneshot or bundle) in s6-rc source format.",
        fun: |v| {
            crate::lifecycle::generate(v, crate::s6rc::create_s6rc_service)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createBSDRCScript",
        doc: "Generate a FreeBSD rc.d script package (etc/rc.d/<name>).",
        fun: |v| {
            crate::lifecycle::generate(v, crate::bsdrc::create_bsdrc_script)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createLaunchdDaemon",
        doc: "Generate a launchd property list package (Library/LaunchDaemons/<Label>.plist).",
        fun: |v| {
            crate::lifecycle::generate(v, crate::launchd::create_launchd_daemon)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createCygrunsrvParams",
        doc: "Generate a cygrunsrv parameters package (<prefix><name>-cygrunsrvparams).",
        fun: |v| {
            crate::lifecycle::generate(v, crate::cygrunsrv::create_cygrunsrv_params)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createDockerContainer",
        doc: "Generate a docker container package (settings, create parameters, priority).",
        fun: |v| {
            crate::lifecycle::generate(v, crate::docker::create_docker_container)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "createProcessScript",
        doc: "Generate a Dysnomia process component (etc/dysnomia/process/<name>) for Disnix.",
        fun: |v| {
            crate::lifecycle::generate(v, crate::disnix::create_process_script)
                .map(PackageSpec::into_value)
        },
    },
    PrimOp {
        name: "nixprocProfileExtras",
        doc: "Files a profile root needs besides its packages (supervisord.conf, the s6-rc \
              default bundle).",
        fun: crate::profile::profile_extras,
    },
    PrimOp {
        name: "nixprocCheckModel",
        doc: "Check a processes model (unique names, known dependencies, no cycles) and \
              return its instance keys in dependency order.",
        fun: crate::model::check_model,
    },
    PrimOp {
        name: "nixprocEcho",
        doc: "Return the argument unchanged (context recomputed per string). For tests of \
              the value conversion.",
        fun: |v| Ok(v.clone()),
    },
];

/// Looks a primop up by name.
pub fn find(name: &str) -> Option<&'static PrimOp> {
    PRIMOPS.iter().find(|p| p.name == name)
}

/// Calls a primop by name; the error names the primop.
pub fn call(name: &str, arg: &Value) -> std::result::Result<Value, String> {
    let op = find(name).ok_or_else(|| format!("nixproc: unknown primop '{name}'"))?;
    (op.fun)(arg).map_err(|e| format!("{name}: {e}"))
}
