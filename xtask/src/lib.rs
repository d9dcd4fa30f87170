//! Pieces of the project tasks that tests reuse.

pub mod elf;
