//! Opening the store the way every command does: settings → data dir → pool → migrations.

use super::config::Settings;
use super::crypto::FieldCipher;
use super::db::{ConnectOptions, Db};
use super::migrate::migrate;

/// Connects to the configured database, applies migrations, and loads the field cipher.
pub async fn open(settings: &Settings) -> anyhow::Result<(Db, FieldCipher)> {
    use anyhow::Context;
    settings
        .prepare_data_dir()
        .with_context(|| format!("creating the data directory for {}", settings.database_url))?;
    let cipher = settings.field_cipher()?;
    let db = Db::connect(
        &settings.database_url,
        &ConnectOptions {
            max_connections: settings.max_connections,
        },
    )
    .await
    .with_context(|| format!("connecting to {}", redact_url(&settings.database_url)))?;
    let n = migrate(&db, &cipher).await.context("applying migrations")?;
    if n > 0 {
        tracing::info!(applied = n, "database migrated");
    }
    Ok((db, cipher))
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            super::redact_url("sqlite://./data/siyu.db"),
            "sqlite://./data/siyu.db"
        );
    }
}
