//! The `pixal` binary: parse the command line, run the command, exit with its code
//! (0 all good, 1 some inputs failed, 2 usage or configuration error, 3 an anomalous photo with
//! `--fail-on-anomaly`, 101 an internal error). With `--json`, every one of these paths prints
//! one JSON line on stdout, clap's usage errors and panics included.

use clap::Parser;

fn main() {
    let json = pixal::commands::json_requested(std::env::args_os());
    if json {
        pixal::commands::install_json_panic_hook();
    }
    // Test hook: the test suite has no other way to make pixal panic on purpose, and the
    // `--json` panic path must be tested like any other.
    if std::env::var_os("PIXAL_TEST_PANIC").is_some() {
        panic!("PIXAL_TEST_PANIC is set");
    }
    let cli = match pixal::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            if json && code != 0 {
                let _ = e.print();
                let text = e.render().to_string();
                let first = match e.kind() {
                    clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                        "error: a subcommand is required (see pixal --help)"
                    }
                    _ => text.lines().next().unwrap_or("error: usage").trim(),
                };
                println!("{}", pixal::commands::error_json(first, code));
                std::process::exit(code);
            }
            e.exit()
        }
    };
    std::process::exit(pixal::commands::run(cli));
}
