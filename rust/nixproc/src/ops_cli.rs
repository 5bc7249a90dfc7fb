//! SKELETON — `nixproc status` and `nixproc logs` (to be implemented).

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct StatusCmd {}

#[derive(Debug, Args)]
pub struct LogsCmd {}

pub fn status(_cmd: StatusCmd) -> Result<ExitCode> {
    bail!("nixproc status: not implemented yet")
}

pub fn logs(_cmd: LogsCmd) -> Result<ExitCode> {
    bail!("nixproc logs: not implemented yet")
}
