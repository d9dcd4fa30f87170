//! Helpers shared by the integration tests: starting real parts they need.
//!
//! - [`moto::MotoServer`]: a moto server (the AWS emulator from PyPI) on a free loopback port,
//!   stopped when dropped. `cargo xtask test` installs it into `target/venv` and exports
//!   `MOTO_SERVER` with its path.

pub mod moto;
