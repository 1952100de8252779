//! `relaycast-floor`: measures the per-packet floor (SRTP protect of a
//! 1,200-byte packet for each profile plus one `sendmmsg` slot to loopback)
//! on this machine and prints it, or with `--json` a JSON document.
//! Exit status 2 when a measurement could not run.

use std::time::Duration;

use clap::Parser;
use relaycast_loadtest::floor;
use relaycast_loadtest::options::parse_duration;

/// Measures the unavoidable per-packet work of an SFU on this machine.
#[derive(Parser, Debug)]
#[command(name = "relaycast-floor", version)]
struct Args {
    /// Time spent on each part (three rounds; the fastest counts).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    budget: Duration,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn main() {
    let args = Args::parse();
    match floor::measure(args.budget) {
        Ok(f) if args.json => println!("{}", f.to_json()),
        Ok(f) => print!("{}", f.human()),
        Err(e) => {
            eprintln!("relaycast-floor: {e}");
            std::process::exit(2);
        }
    }
}
