//! `--name value` flags for the example tools (no clap: they take a few
//! flags and are run from scripts).

/// The value after `name`, if the flag is given.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}
