//! nixproc-state: the state of stateful services, kept safe across
//! upgrades and rollbacks (reference state-background.md §6).
//!
//! A *snapshot* captures every declared unit of one instance
//! ([`nixproc_core::lifecycle::StateSpec`]) as `capture → zstd → age`
//! files plus a cleartext `manifest.json`, staged under `tmp/`, fsynced and
//! renamed into `objects/<id>/`; refs (`instances/<i>/revisions/<rev>`,
//! `generations/<n>`, `manual/<tag>`) point at objects. A restore decrypts
//! and stages every unit and checks its plaintext digest *before* anything
//! live is touched, then applies.
//!
//! Layout of a store (see [`store`]):
//!
//! ```text
//! <root>/lock                       flock: exclusive for switch/restore/gc, shared for snapshots
//! <root>/objects/<id>/manifest.json cleartext, no secrets (ciphertext digests)
//! <root>/objects/<id>/secret.json.age  plaintext digests (encrypted)
//! <root>/objects/<id>/unit-<name>.<ext>.zst.age
//! <root>/instances/<instance>/{revisions,generations,manual}/<key> -> ../../../objects/<id>
//! <root>/tmp/  <root>/trash/
//! ```

pub mod adapters;
pub mod archive;
pub mod faults;
pub mod format;
pub mod keys;
pub mod lock;
pub mod store;

pub use format::{Reason, SnapshotManifest, UnitEntry};
pub use keys::{KeyConfig, Keys};
pub use store::{GcOptions, GcRoots, RunAs, Selector, SnapshotRequest, StateStore};
