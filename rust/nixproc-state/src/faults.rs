//! Fault injection for crash-safety tests: with `NIXPROC_FAULT=<point>` in
//! the environment the process SIGKILLs itself when it reaches `<point>`
//! (no unwinding, no destructors: what a power cut or `kill -9` leaves).
//!
//! The points, in the order a snapshot or restore reaches them:
//!
//! | point | where |
//! |---|---|
//! | `snapshot.unit-written` | after each unit file is written and fsynced in `tmp/<id>/` |
//! | `snapshot.before-rename` | manifests written and fsynced, before `tmp/<id>` → `objects/<id>` |
//! | `snapshot.after-rename` | the object is in `objects/`, no ref yet |
//! | `snapshot.before-refs` | just before the refs are created |
//! | `restore.staged` | every unit staged and verified, nothing live touched yet |
//! | `restore.between-units` | after one unit was applied, before the next |
//! | `directory.between-renames` | live dir renamed away, stage not yet renamed in |
//! | `gc.moved-to-trash` | unreferenced objects moved to `trash/`, not yet deleted |

/// The points of a switch (`nixproc switch`, reached in this order):
/// `switch.after-plan` (journal written, nothing done), `switch.after-first-stop`,
/// `switch.between-phases`, `switch.after-first-start`, `switch.before-record`
/// (everything switched, generation not recorded).
pub const SWITCH_POINTS: &[&str] = &[
    "switch.after-plan",
    "switch.after-first-stop",
    "switch.between-phases",
    "switch.after-first-start",
    "switch.before-record",
];

/// Every fault point of the state store, for tests that iterate over them.
pub const POINTS: &[&str] = &[
    "snapshot.unit-written",
    "snapshot.before-rename",
    "snapshot.after-rename",
    "snapshot.before-refs",
    "restore.staged",
    "restore.between-units",
    "directory.between-renames",
    "gc.moved-to-trash",
];

/// The environment variable naming the point to die at.
pub const ENV: &str = "NIXPROC_FAULT";

/// Kills the own process with SIGKILL when `NIXPROC_FAULT` equals `name`.
pub fn point(name: &str) {
    debug_assert!(
        POINTS.contains(&name) || SWITCH_POINTS.contains(&name),
        "unknown fault point {name}"
    );
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; should delivery somehow be delayed,
        // never continue past the point.
        std::process::abort();
    }
}
