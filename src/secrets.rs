//! Secrets generated once and kept in the data dir: the stream key for
//! `live` when none is configured (so OBS settings survive a restart) and
//! the HS256 secret identity tokens are signed with (so tokens, including
//! those `relaycast token create` prints, stay valid across restarts).
//! Files are created readable by the owner only.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::distr::{Alphanumeric, SampleString};

const STREAM_KEY_FILE: &str = "stream-key-live";
const JWT_SECRET_FILE: &str = "jwt-secret";

/// The stored stream key for `live`, generated the first time.
pub fn stream_key(data_dir: &Path) -> anyhow::Result<String> {
    load_or_generate(data_dir, STREAM_KEY_FILE, 24)
}

/// The stored token-signing secret, generated the first time.
pub fn jwt_secret(data_dir: &Path) -> anyhow::Result<String> {
    load_or_generate(data_dir, JWT_SECRET_FILE, 48)
}

fn load_or_generate(data_dir: &Path, file: &str, len: usize) -> anyhow::Result<String> {
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 8 => return Ok(s.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let secret = Alphanumeric.sample_string(&mut rand::rng(), len);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&path)
        .and_then(|mut f| f.write_all(secret.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_generated_once_and_then_kept() {
        let dir = std::env::temp_dir().join(format!("relaycast-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = jwt_secret(&dir).unwrap();
        assert_eq!(first.len(), 48);
        assert_eq!(jwt_secret(&dir).unwrap(), first);
        assert_ne!(stream_key(&dir).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(JWT_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
