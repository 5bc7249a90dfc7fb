//! SKELETON — to be implemented (see adapters/mod.rs for the contract).

use std::io::{Read, Write};

use anyhow::Result;
use nixproc_core::lifecycle::StateUnit;

use super::{Adapter, StagedRestore, UnitContext};

pub struct Sqlite {
    unit: StateUnit,
}

impl Sqlite {
    pub fn new(unit: &StateUnit) -> Self {
        Sqlite { unit: unit.clone() }
    }
}

impl Adapter for Sqlite {
    fn extension(&self) -> &'static str {
        let _ = &self.unit;
        todo!()
    }
    fn capture(&self, _ctx: &UnitContext, _out: &mut dyn Write) -> Result<()> {
        todo!()
    }
    fn stage(&self, _ctx: &UnitContext, _input: &mut dyn Read) -> Result<Box<dyn StagedRestore>> {
        todo!()
    }
}
