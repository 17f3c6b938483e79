//! The `hamn` binary: parses the command line and hands over to `hamn::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    hamn::cli::main(hamn::cli::Cli::parse())
}
