//! The generated stream key for `live` when none is configured. It is kept in
//! the data dir so OBS settings survive a restart.

use std::path::Path;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};

const FILE: &str = "stream-key-live";

/// Returns the stored key, generating and storing a new one the first time.
pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 8 => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let secret = Alphanumeric.sample_string(&mut rand::rng(), 24);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}
