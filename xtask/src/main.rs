//! `cargo xtask demo` runs the seed scenario on the embedded defaults; `cargo xtask test` prepares
//! everything the tests need (a Python venv with moto server) and runs the whole test suite.

mod api_fuzz;
mod demo;
mod package;
mod test;
mod util;
mod waf_bench;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <demo|test>
  demo   run the seed scenario end to end, locally
  test   prepare the test environment (moto server in a venv) and run every test
  package [--debug] [--image [TAG]]
         build the static Lambda zip (target/lambda/) and the defender image context";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("waf-bench") => waf_bench::run(&args[1..]),
        Some("package") => package::run(&args[1..]),
        Some("demo-web") => demo_web(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown task {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask demo-web ADDR NAME`: the demo's web app (run under the defender by the demo).
fn demo_web(args: &[String]) -> anyhow::Result<()> {
    let (Some(addr), Some(name)) = (args.first(), args.get(1)) else {
        anyhow::bail!("usage: xtask demo-web ADDR NAME");
    };
    let addr = addr
        .parse()
        .map_err(|e| anyhow::anyhow!("demo-web: bad address {addr:?}: {e}"))?;
    demo::web::serve(addr, name)
}
