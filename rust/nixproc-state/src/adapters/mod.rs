//! One adapter per unit type: how to capture a unit as a byte stream, and
//! how to restore it in two steps — *stage* (consume the stream somewhere
//! that is not live: a staging directory next to the target, a dump file)
//! and *apply* (swap it in / drop-recreate-load). The store checks the
//! plaintext digest between the two, so a corrupted or tampered snapshot
//! never touches live state.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Result;
use nixproc_core::lifecycle::{StateUnit, UnitKind};

use crate::store::RunAs;

pub mod command;
pub mod directory;
pub mod mysql;
pub mod postgresql;
pub mod sqlite;
pub(crate) mod tool;

/// What an adapter gets besides the unit.
pub struct UnitContext<'a> {
    /// The instance the unit belongs to (for messages).
    pub instance: &'a str,
    /// The unit name (for messages, staging names).
    pub unit: &'a str,
    /// Run engine tools (pg_dump, sqlite3, user commands) as this account
    /// (nixproc runs as root and the instance declares a user); `None`:
    /// as the caller.
    pub run_as: Option<&'a RunAs>,
    /// A private scratch directory inside the store's `tmp/` for dump files
    /// (removed by the store afterwards).
    pub scratch: &'a Path,
}

pub trait Adapter {
    /// The file extension of the plaintext stream (`tar`, `pgdump`, `sql`,
    /// `sqlite`, `bin`): snapshot files are `unit-<name>.<ext>.zst.age`.
    fn extension(&self) -> &'static str;

    /// Writes the unit's plaintext to `out`. A tool exiting non-zero is an
    /// error naming the tool and its stderr tail.
    fn capture(&self, ctx: &UnitContext, out: &mut dyn Write) -> Result<()>;

    /// Consumes the whole plaintext stream into a staged form; touches
    /// nothing live. Dropping the result without `apply` removes the stage.
    fn stage(&self, ctx: &UnitContext, input: &mut dyn Read) -> Result<Box<dyn StagedRestore>>;
}

/// A verified, staged restore waiting to be applied.
pub trait StagedRestore {
    /// Replaces the live state with the staged one. Either the old or the
    /// new state is live afterwards, never a mix, where the engine allows
    /// (directory: rename swap; database: one transaction).
    fn apply(self: Box<Self>, ctx: &UnitContext) -> Result<()>;
}

/// The adapter for a declared unit.
pub fn adapter_for(unit: &StateUnit) -> Box<dyn Adapter> {
    match &unit.kind {
        UnitKind::Directory { .. } => Box::new(directory::Directory::new(unit)),
        UnitKind::Sqlite { .. } => Box::new(sqlite::Sqlite::new(unit)),
        UnitKind::PostgresqlDatabase { .. } => Box::new(postgresql::PostgresqlDatabase::new(unit)),
        UnitKind::MysqlDatabase { .. } => Box::new(mysql::MysqlDatabase::new(unit)),
        UnitKind::Command { .. } => Box::new(command::Command::new(unit)),
    }
}
