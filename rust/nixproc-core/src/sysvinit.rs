//! sysvinit generator (to be written: see generator brief).
use crate::error::Result;
use crate::package::PackageSpec;
use crate::value::Value;

pub fn create_systemv_init_script(_args: &Value) -> Result<PackageSpec> {
    Err(crate::Error::Model("sysvinit generator not written yet".into()))
}
