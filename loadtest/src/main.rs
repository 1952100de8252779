//! `relaycast-loadtest`: parses the command line, runs the load test and
//! prints the report. Exit status: 0 on pass, 1 when a join failed or
//! unrecovered loss exceeded 1%, 2 when the run could not start. The last
//! line of output (stdout, or stderr with `--json`) is a one-line summary.

use clap::Parser;
use relaycast_loadtest::{run, Options};

fn main() {
    let options = Options::parse();
    let report = match run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relaycast-loadtest: {e}");
            eprintln!("ERROR {e}");
            std::process::exit(2);
        }
    };
    if options.json {
        println!("{}", report.to_json());
        eprintln!("{}", report.summary_line());
    } else {
        print!("{}", report.human());
        println!("{}", report.summary_line());
    }
    std::process::exit(if report.passed() { 0 } else { 1 });
}
