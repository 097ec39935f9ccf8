//! The command line: serve, ca init, audit verify, config check.
// SKELETON: replaced by the real implementation.

use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
