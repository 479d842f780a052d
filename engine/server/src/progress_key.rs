//! The key that signs customer progress links: 32 random bytes, kept hex-encoded in
//! `progress-link.key` in the data directory (in the database's `meta` table with
//! PostgreSQL, shared by every node), made on the first start (like the first admin token)
//! and read on every later one. Whoever holds it can make links to any
//! instance, so the file is created readable by its owner only; replacing it ends every
//! link given out (they no longer verify), which is how to revoke them all at once.

use anyhow::Context;
use std::io::Write;
use std::path::Path;

/// Where the key lives with PostgreSQL: in the shared `meta` table, so a link made on one
/// node verifies on every node, and a copy of the store carries it.
pub const META_KEY: &str = "progress_link_key";

/// The key every node sharing `store` uses: the stored one, or a new one stored now (nodes
/// starting together all get the first one stored).
///
/// # Errors
/// The database cannot be reached, or holds something that is not a hex key.
pub fn load_or_create_shared(store: &waystation_store::PgStore) -> anyhow::Result<Vec<u8>> {
    let hex = store.meta_or_insert(META_KEY, &hex(&new_key()?))?;
    parse(hex.trim()).with_context(|| {
        format!(
            "the progress link key in {} is not a hex key of 16 bytes or more",
            store.describe()
        )
    })
}

/// The key of a data directory's file as hex, if there is one, for copying it.
///
/// # Errors
/// The file exists but cannot be read.
pub fn read_hex(file: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Writes `hex` as the key file `file` (owner-only, synced), for a copied store.
///
/// # Errors
/// The file cannot be written.
pub fn write_hex(file: &Path, hex: &str) -> anyhow::Result<()> {
    write_file(file, hex)
}

fn new_key() -> anyhow::Result<Vec<u8>> {
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key)
        .map_err(|e| anyhow::anyhow!("no randomness for the progress link key: {e}"))?;
    Ok(key)
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a new key.
const KEY_BYTES: usize = 32;

/// The key in `file`, made there first if it does not exist.
///
/// # Errors
/// When the file cannot be read or written, or holds something that is not a hex key of
/// at least 16 bytes.
pub fn load_or_create(file: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read_to_string(file) {
        Ok(text) => parse(text.trim()).with_context(|| {
            format!(
                "{} does not hold a hex key of 16 bytes or more",
                file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(file),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

fn parse(hex: &str) -> Option<Vec<u8>> {
    if hex.len() < 32 || !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok())
        .collect()
}

/// Writes a new key to a temporary file (owner-only), syncs it, renames it into place and
/// syncs the directory: a crash leaves the old state or the whole key, never half of one.
fn create(file: &Path) -> anyhow::Result<Vec<u8>> {
    let key = new_key()?;
    write_file(file, &hex(&key))?;
    tracing::info!(file = %file.display(), "made the progress link key");
    Ok(key)
}

fn write_file(file: &Path, hex: &str) -> anyhow::Result<()> {
    let tmp = file.with_extension("key.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    out.write_all(hex.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot create {}", file.display()))?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_and_read_back_the_same() {
        let dir = std::env::temp_dir().join(format!("ws-progress-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("progress-link.key");
        let _ = std::fs::remove_file(&file);
        let made = load_or_create(&file).unwrap();
        assert_eq!(made.len(), KEY_BYTES);
        assert_eq!(load_or_create(&file).unwrap(), made);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "owner only");
        }
        std::fs::write(&file, "not hex").unwrap();
        assert!(load_or_create(&file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
