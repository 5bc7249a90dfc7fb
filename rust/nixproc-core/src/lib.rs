//! nixproc-core: pure generators of process-manager configuration.
//!
//! No I/O, no Nix, no processes: everything here maps values to values, so
//! the plugin (evaluation time), the static builder (build time) and the
//! tests share one implementation.

pub mod agnostic;
pub mod args;
pub mod bsdrc;
pub mod context;
pub mod credentials;
pub mod cygrunsrv;
pub mod disnix;
pub mod docker;
pub mod error;
pub mod fields;
pub mod launchd;
pub mod lifecycle;
pub mod manifest;
pub mod model;
pub mod package;
pub mod primops;
pub mod profile;
pub mod proxy;
pub mod quote;
pub mod s6rc;
pub mod supervisord;
pub mod systemd;
pub mod sysvinit;
pub mod value;

pub use error::{Error, Result};
pub use value::{NixString, Value};
