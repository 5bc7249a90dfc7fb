//! nixproc-core: pure generators of process-manager configuration.
//!
//! No I/O, no Nix, no processes: everything here maps values to values, so
//! the plugin (evaluation time), the static builder (build time) and the
//! tests share one implementation.

pub mod args;
pub mod context;
pub mod credentials;
pub mod error;
pub mod manifest;
pub mod model;
pub mod package;
pub mod primops;
pub mod quote;
pub mod sysvinit;
pub mod value;

pub use error::{Error, Result};
pub use value::{NixString, Value};
