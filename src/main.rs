//! The `stackci` binary: parses arguments and maps the outcome to an exit code.
//! 0 success, 1 a build failed or a check found a difference, 2 an error.

use std::process::ExitCode;

fn main() -> ExitCode {
    match stackci::cli::main() {
        Ok(code) => code,
        Err(err) => {
            if err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            stackci::cli::print_error(&err);
            ExitCode::from(2)
        }
    }
}
