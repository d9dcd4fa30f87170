//! `defender`: the thin binary around the `defender` library.
//!
//! - `defender run [--policy-file F] [--audit-log F] [--backend notify|ptrace]
//!   [--cnaf console | --cnaf-listen ADDR --cnaf-upstream ADDR] -- PROGRAM ARGS...`
//! - `defender cnaf [--policy-file F] [--audit-log F] [--cnaf console | --listen ADDR --upstream ADDR]`
//! - `defender install DIR`

mod cli;
mod cnaf_run;
mod console_run;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
