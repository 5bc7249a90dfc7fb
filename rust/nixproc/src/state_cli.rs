//! SKELETON — `nixproc state …` (to be implemented).

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// Print the host's age recipient, creating the host identity if needed.
    Keygen,
}

pub fn run(_cmd: StateCmd) -> Result<ExitCode> {
    bail!("nixproc state: not implemented yet")
}
