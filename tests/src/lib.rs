//! Helpers shared by the integration tests: starting real parts they need.
//!
//! - [`moto::MotoServer`]: a moto server (the AWS emulator from PyPI) on a free loopback port,
//!   stopped when dropped. `cargo xtask test` installs it into `target/venv` and exports
//!   `MOTO_SERVER` with its path.
//! - [`registry::LocalRegistry`]: Debian's `docker-registry` (installed with apt-get when it is
//!   missing) on a free loopback port, with storage of its own, stopped when dropped.

pub mod moto;
pub mod registry;
