//! The `webhookd` binary: everything lives in the library; see `cli::main`.

fn main() -> std::process::ExitCode {
    webhookd::cli::main()
}
