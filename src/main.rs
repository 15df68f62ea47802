//! The `pixal` binary: parse the command line, run the command, exit with its code
//! (0 all good, 1 some inputs failed, 2 usage or configuration error).

use clap::Parser;

fn main() {
    let cli = pixal::cli::Cli::parse();
    std::process::exit(pixal::commands::run(cli));
}
