//! Opening the app from the command line's settings: database, secret key, logging.

use anyhow::Context;
use patron_app::App;
use std::io::Write;
use std::path::Path;

/// Reads the ID-hash key, or creates a random one (readable by the owner only).
/// `PATRON_ID_HASH_KEY` overrides the file.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(k) = std::env::var("PATRON_ID_HASH_KEY")
        && !k.is_empty()
    {
        return Ok(k.into_bytes());
    }
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?;
        let key = text.trim().to_string();
        anyhow::ensure!(
            key.len() >= 32,
            "key file {} is too short (expected 64 hex digits)",
            path.display()
        );
        return Ok(key.into_bytes());
    }
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating key file {}", path.display()))?;
    writeln!(f, "{hex}")?;
    eprintln!(
        "note: created {} — the secret that protects ID numbers. Back it up with the database: \
         without it, look-up by ID number stops working.",
        path.display()
    );
    Ok(hex.into_bytes())
}

/// Connects, migrates and builds the app.
pub async fn open_app(database_url: &str, key_file: &Path) -> anyhow::Result<App> {
    let storage = patron_store::connect(database_url)
        .await
        .with_context(|| format!("opening database {}", redact(database_url)))?;
    let key = load_or_create_key(key_file)?;
    Ok(App::new(storage, key))
}

/// Hides a password in a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub fn init_logging(format: &str, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info,sqlx=warn" } else { "warn" };
    let filter = EnvFilter::try_from_env("PATRON_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("sqlite://patron.db"), "sqlite://patron.db");
    }
}
