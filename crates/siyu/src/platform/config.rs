//! Configuration from `siyu.toml` and `SIYU_*` environment variables (environment wins).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::crypto::{self, FieldCipher};

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `sqlite://PATH` (the default, `./data/siyu.db`) or `postgres://…`.
    pub database_url: String,
    /// 32 bytes, base64 or hex. When absent, read from or generated into `data_dir/secret.key`.
    pub secret_key: Option<String>,
    /// Where the SQLite file, the generated secret and demo exports live.
    pub data_dir: PathBuf,
    /// Address `siyu serve` listens on.
    pub listen: String,
    /// Largest number of database connections in the pool.
    pub max_connections: u32,
    /// `redis://…`: flash-sale stock is counted in Redis (a Lua check-and-decrement) instead of
    /// in this process's memory, for several servers selling one sale. Unset: in memory.
    pub flash_gate: Option<String>,
    /// How customers reach this server, e.g. `https://s.brand.cn`: tracking links and QR codes
    /// start with it. Unset: `http://` and the listen address.
    pub public_url: Option<String>,
    /// `[sms]`: the SMS provider (`log` by default) and its account.
    pub sms: crate::channels::sms::SmsSettings,
    /// Lets tenants point their WeCom `base_url` somewhere other than WeCom (a proxy, a local
    /// sandbox). Off: the server only ever calls `https://qyapi.weixin.qq.com`.
    pub wecom_allow_base_url: bool,
    /// Lets tenants point a marketplace shop's `api_base` somewhere other than its platform (a
    /// proxy, the sandbox). Off: the sync only ever calls the platforms' public addresses.
    pub marketplace_allow_api_base: bool,
    /// Who takes customers' money on the H5 activities. Unset: no one, and flash-sale attempts,
    /// group-buy teams and bargain purchases are refused. `local-demo` settles at once without
    /// taking money: for the demo and tests only.
    pub payment_provider: Option<String>,
    /// Proxies in front of the server whose `X-Forwarded-For` is believed, as addresses or
    /// ranges separated by commas (`10.0.0.0/8, 127.0.0.1`). Unset: the header is ignored and
    /// the connection's peer is the client.
    pub trusted_proxies: Option<String>,
    /// `[limits]`: request rates and requests in flight per route class.
    pub limits: RequestLimitSettings,
    /// Addresses or ranges, besides this host, that may read `/metrics` (a Prometheus on
    /// another host), separated by commas. Only ever directly: a request through a proxy is not
    /// answered. Unset: this host only.
    pub metrics_scrapers: Option<String>,
}

/// `[limits]` in `siyu.toml` (or `SIYU_LIMITS__API_PER_SECOND=…`): how fast one address (or one
/// API key) may call each class of routes, and how many requests of a class may be in flight at
/// once before more are answered "busy". The defaults let a person, a till and a brand's
/// back-office through untouched and stop a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct RequestLimitSettings {
    /// Customer pages and their JSON (`/h5`, `/t`, `/c`), health: per client address.
    pub customer_per_second: u32,
    pub customer_burst: u32,
    /// The console: per client address.
    pub console_per_second: u32,
    pub console_burst: u32,
    /// `/api/v1`: per API key (per address for calls without one).
    pub api_per_second: u32,
    pub api_burst: u32,
    /// Requests in flight at once, per class; more are answered 503 at once.
    pub customer_in_flight: u32,
    pub api_in_flight: u32,
    pub console_in_flight: u32,
    pub callback_in_flight: u32,
    /// Seconds a customer page's or a callback's request may take to send its body, and a
    /// console request's: a client that sends half a body gives its slot back. The API has no
    /// deadline (uploads of exports take minutes).
    pub public_body_seconds: u32,
    pub console_body_seconds: u32,
}

impl Default for RequestLimitSettings {
    fn default() -> Self {
        RequestLimitSettings {
            customer_per_second: 20,
            customer_burst: 60,
            console_per_second: 20,
            console_burst: 100,
            api_per_second: 200,
            api_burst: 1_000,
            customer_in_flight: 2_048,
            api_in_flight: 256,
            console_in_flight: 128,
            callback_in_flight: 256,
            public_body_seconds: 30,
            console_body_seconds: 120,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://./data/siyu.db".into(),
            secret_key: None,
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".into(),
            max_connections: 8,
            flash_gate: None,
            public_url: None,
            sms: Default::default(),
            wecom_allow_base_url: false,
            marketplace_allow_api_base: false,
            payment_provider: None,
            trusted_proxies: None,
            limits: RequestLimitSettings::default(),
            metrics_scrapers: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("SIYU_SECRET_KEY: {0}")]
    Secret(#[from] crypto::CryptoError),
    #[error("secret key file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Settings {
    /// Reads `siyu.toml` (or the given file) if present, then `SIYU_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut b = config::Config::builder();
        match file {
            Some(f) => b = b.add_source(config::File::from(f).required(true)),
            None => b = b.add_source(config::File::with_name("siyu.toml").required(false)),
        }
        b = b.add_source(
            config::Environment::with_prefix("SIYU")
                .prefix_separator("_")
                .separator("__"),
        );
        Ok(b.build()?.try_deserialize()?)
    }

    /// The field cipher from `secret_key`, or from `data_dir/secret.key`, generating that file
    /// (and warning) on first run.
    pub fn field_cipher(&self) -> Result<FieldCipher, ConfigError> {
        if let Some(k) = &self.secret_key {
            return Ok(FieldCipher::new(&crypto::parse_secret(k)?));
        }
        let path = self.data_dir.join("secret.key");
        let io = |source| ConfigError::SecretFile {
            path: path.clone(),
            source,
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.data_dir).map_err(io)?;
                let k = crypto::generate_secret();
                write_private(&path, &k).map_err(io)?;
                tracing::warn!(
                    path = %path.display(),
                    "SIYU_SECRET_KEY is not set: generated a new field-encryption key. Back it up; \
                     without it encrypted phone numbers cannot be read."
                );
                k
            }
            Err(e) => return Err(io(e)),
        };
        Ok(FieldCipher::new(&crypto::parse_secret(&text)?))
    }

    /// Creates the directory of a `sqlite://` database file so that the first run just works.
    pub fn prepare_data_dir(&self) -> std::io::Result<()> {
        if let Some(path) = self.database_url.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = Path::new(path)
                .parent()
                .filter(|d| path != ":memory:" && !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)?;
            }
        }
        Ok(())
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}
