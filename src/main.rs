//! The `ironclone` binary: the TUI with no arguments, the scriptable CLI otherwise.
//! Library errors are typed; here they become `anyhow` reports for the user.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
