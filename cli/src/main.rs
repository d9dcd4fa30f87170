//! `deploy-protected`: see the library crate for everything it does.

fn main() -> std::process::ExitCode {
    deploy_protected::main()
}
