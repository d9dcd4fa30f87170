//! `defender`: the thin binary around the `defender` library.
//!
//! - `defender run [--policy-file F] [--audit-log F] [--backend notify|ptrace] -- PROGRAM ARGS...`
//! - `defender install DIR`

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
