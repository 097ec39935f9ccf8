//! The `sceau` command: parses the command line and runs it.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    sceau::cli::main()
}
