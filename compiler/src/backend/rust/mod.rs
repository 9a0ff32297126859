//! placeholder
use super::{OutFile, Program};
pub fn emit(_p: &Program) -> crate::Result<Vec<OutFile>> { Err(crate::Error::Usage("rust backend: in progress".into())) }
