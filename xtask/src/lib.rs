//! Pieces of the project tasks that tests reuse.

pub mod cargo_env;
pub mod elf;
