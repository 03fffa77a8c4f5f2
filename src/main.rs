//! The `siyu` command: serve, demo, import, tenants and users, migrations, benchmarks.

use siyu::platform::TenantId;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use siyu::app::{App, AppSettings};
use siyu::know::import::presets::{self, PRESET_NAMES};
use siyu::know::import::{FileSummary, ImportOptions, parse_ahead, status_map};
use siyu::platform::access::{self, Role};
use siyu::platform::config::Settings;
use siyu::platform::db::Db;
use siyu::platform::runtime::{open, redact_url};

mod bench;
mod bench_acquire;
mod bench_audience;
mod bench_connect;
mod bench_flash;
mod bench_overview;
mod bench_sync;
mod demo_activities;
mod demo_cmd;
mod demo_connect;
mod demo_sync;
mod layering_cmd;
mod sync_cmd;

#[derive(Parser)]
#[command(
    name = "siyu",
    version,
    about = "Siyu (私域): customer operations for brands that sell on marketplaces and in stores"
)]
struct Cli {
    /// Configuration file (default: ./siyu.toml when present).
    #[arg(long, global = true, env = "SIYU_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… (overrides the configuration).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the console.
    Serve {
        #[arg(long)]
        listen: Option<String>,
    },
    /// Build a demo brand offline, report on it, then serve the console.
    Demo(demo_cmd::DemoArgs),
    /// Import data files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage tenants (brands).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print who changed access (keys, users), newest first.
    Audit {
        #[arg(long)]
        tenant: String,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Marketplace shops whose orders are synced from the platforms' open APIs.
    #[command(subcommand)]
    Shop(sync_cmd::ShopCommand),
    /// Ask every connected shop's platform for the orders changed since the last sync, once
    /// (`siyu serve` does it every five minutes).
    Sync {
        #[arg(long)]
        tenant: Option<String>,
        /// One shop only.
        #[arg(long)]
        shop: Option<i64>,
    },
    /// Saved segments and rules.
    #[command(subcommand)]
    Segment(layering_cmd::SegmentCommand),
    /// Print the RFM class and lifecycle stage distribution.
    Rfm(layering_cmd::RfmArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Measure import and ingestion throughput.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import order exports (seller-center CSVs or POS files).
    Orders(ImportOrdersArgs),
    /// List the status texts orders carry that Siyu does not know, or the tenant's map reads.
    Statuses {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Read a status text as a status (import.status_map) and re-read the orders that carry it;
    /// `--remove` forgets the reading.
    MapStatus {
        /// The text as the export writes it, e.g. 售后中.
        text: String,
        /// pending, paid, shipped, completed, refunded or closed.
        #[arg(required_unless_present = "remove")]
        status: Option<String>,
        #[arg(long)]
        remove: bool,
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Args)]
struct ImportOrdersArgs {
    /// Export layout: tmall, jd, douyin, pdd, youzan, pos or generic.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(PRESET_NAMES))]
    preset: String,
    /// TOML file naming the columns of a layout no preset knows.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Store id for POS files without a store column.
    #[arg(long)]
    store: Option<String>,
    /// Channel for generic files without a channel column.
    #[arg(long)]
    channel: Option<String>,
    /// Tenant name (may be omitted when there is exactly one).
    #[arg(long)]
    tenant: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its first API key (shown once).
    Create { name: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a console user.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        /// Password (at least 8 characters); read from SIYU_USER_PASSWORD when not given.
        #[arg(long, env = "SIYU_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long, default_value = "operator", value_parser = ["admin", "operator", "guide", "viewer"])]
        role: String,
        /// Name shown in the console.
        #[arg(long)]
        name: Option<String>,
    },
    /// Disable a console user: they cannot sign in, and their sessions end now.
    Disable {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
    },
    /// Give a console user a new password; their sessions end.
    Password {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        username: String,
        /// The new password (at least 8 characters); read from SIYU_USER_PASSWORD when not given.
        #[arg(long, env = "SIYU_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key and print it (shown once).
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "operator", value_parser = ["admin", "operator", "guide", "viewer"])]
        role: String,
    },
    /// List a tenant's API keys by their first characters.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Revoke an API key (by the first characters `key list` shows); it stops working at once.
    Revoke {
        #[arg(long)]
        tenant: String,
        prefix: String,
    },
    /// Replace an API key with a new one of the same name and role (printed once); the old one
    /// stops working at once.
    Rotate {
        #[arg(long)]
        tenant: String,
        prefix: String,
    },
}

/// Who runs the CLI, for the audit log.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn settings(cli: &Cli) -> anyhow::Result<Settings> {
    let mut s = Settings::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database_url {
        s.database_url = url.clone();
    }
    Ok(s)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Binds and serves until Ctrl-C or SIGTERM.
pub async fn serve(
    db: Db,
    cipher: siyu::platform::crypto::FieldCipher,
    listen: &str,
    settings: &Settings,
    banner: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    banner(addr);
    tracing::info!(%addr, "serving");
    let app = App::build(
        db.clone(),
        cipher,
        AppSettings::from_settings(settings, addr),
    )
    .await?;
    tracing::info!(provider = app.outbox.provider_name(), "SMS provider");
    match app.payments.provider_name() {
        None => tracing::warn!(
            "no payment provider (payment_provider): H5 flash-sale attempts, group-buy teams and bargain purchases are refused"
        ),
        Some("local") => tracing::warn!(
            "payment_provider = local-demo: purchases settle WITHOUT taking money; for a demo only"
        ),
        Some(p) => tracing::info!(provider = p, "payment provider"),
    }
    if settings.flash_gate.is_some() {
        tracing::info!("flash-sale stock is counted in Redis");
    }
    siyu_web::serve(listener, app, shutdown_signal()).await?;
    db.close().await;
    Ok(())
}

pub fn progress_bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:36}] {percent:>3}% {binary_bytes:>9}/{binary_total_bytes:<9} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_owned());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

pub async fn tenant_id_for(db: &Db, name: Option<&str>) -> anyhow::Result<TenantId> {
    if let Some(n) = name {
        return Ok(access::tenant_by_name(db, n).await?.id);
    }
    let all: Vec<(TenantId, String)> = db
        .fetch_all(&siyu::platform::db::sql(
            "SELECT id, name FROM tenants ORDER BY id",
        ))
        .await?;
    match all.as_slice() {
        [(id, _)] => Ok(*id),
        [] => bail!("no tenant yet: create one with `siyu tenant create NAME`"),
        _ => bail!(
            "several tenants exist ({}): say which with --tenant",
            all.iter()
                .map(|t| t.1.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn print_summary(s: &FileSummary) {
    println!(
        "{}: read {}, imported {}, updated {}, rejected {} ({} new customers, {} merges, {})",
        s.file,
        s.read,
        s.imported,
        s.updated,
        s.rejected,
        s.customers_created,
        s.customers_merged,
        match s.encoding {
            Some(siyu::know::import::TextEncoding::Gb18030) => "GB18030",
            _ => "UTF-8",
        }
    );
    for e in &s.errors {
        println!(
            "  line {}{}: {}",
            e.line,
            if e.column.is_empty() {
                String::new()
            } else {
                format!(", column {}", e.column)
            },
            e.reason
        );
    }
    if s.rejected as usize > s.errors.len() {
        println!("  … and {} more", s.rejected as usize - s.errors.len());
    }
    if s.unknown_status > 0 {
        println!(
            "  kept {} orders with a status Siyu does not read yet (not counted as purchases until mapped):",
            s.unknown_status
        );
        for (text, n) in &s.unknown_texts {
            println!(
                "    {text:?}: {n} orders — read it with `siyu import map-status {text:?} <status>`"
            );
        }
    }
    if s.unlinked > 0 {
        println!(
            "  kept {} orders whose buyer is not identified (masked phone, no buyer id): counted in channel figures, linked when an identity appears",
            s.unlinked
        );
    }
    if s.buyers_linked > 0 {
        println!("  linked {} earlier unidentified buyers", s.buyers_linked);
    }
    if let Some(f) = &s.rejected_file {
        println!("  rejected rows written to {f}");
    }
}

async fn import_orders(settings: &Settings, a: ImportOrdersArgs) -> anyhow::Result<bool> {
    let (db, cipher) = open(settings).await?;
    let tenant = tenant_id_for(&db, a.tenant.as_deref()).await?;
    let base =
        presets::preset(&a.preset).with_context(|| format!("unknown preset {}", a.preset))?;
    let preset = match &a.mapping {
        Some(m) => presets::load_mapping(m, base)?,
        None => base,
    };
    let mut opts = ImportOptions::new(preset);
    opts.status_map = status_map::load(&db, tenant).await?;
    opts.store_id = a.store.clone();
    opts.channel = a.channel.clone();
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for parsing in parse_ahead(
        &cipher,
        tenant,
        a.files.iter().map(|f| (f.clone(), opts.clone())),
    ) {
        let f = parsing.path().to_path_buf();
        let pb = if a.json {
            ProgressBar::hidden()
        } else {
            progress_bar(
                0,
                &f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        };
        match parsing.store(&db, Some(&pb)).await {
            Ok(s) => {
                pb.finish_and_clear();
                if !a.json {
                    print_summary(&s);
                }
                summaries.push(s);
            }
            Err(e) => {
                pb.abandon();
                eprintln!("error: {e}");
                failures.push(
                    serde_json::json!({"file": f.display().to_string(), "error": e.to_string()}),
                );
            }
        }
    }
    let total = |f: fn(&FileSummary) -> u64| summaries.iter().map(f).sum::<u64>();
    if total(|s| s.imported) + total(|s| s.updated) > 0 {
        // Figures, RFM and stages follow the orders; a server on this database rebuilds its
        // index of the tenant.
        siyu::workflows::import_finished(&db, tenant, siyu::platform::clock::now_ms()).await?;
    }
    if a.json {
        let out = serde_json::json!({
            "files": summaries,
            "failed": failures,
            "read": total(|s| s.read),
            "imported": total(|s| s.imported),
            "updated": total(|s| s.updated),
            "rejected": total(|s| s.rejected),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if summaries.len() > 1 {
        println!(
            "total: read {}, imported {}, updated {}, rejected {}",
            total(|s| s.read),
            total(|s| s.imported),
            total(|s| s.updated),
            total(|s| s.rejected)
        );
    }
    db.close().await;
    Ok(total(|s| s.imported) + total(|s| s.updated) > 0)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIYU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> std::process::ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a command; `Ok(false)` means it ran but achieved nothing (an import with no good row).
async fn run(cli: Cli) -> anyhow::Result<bool> {
    let s = settings(&cli)?;
    match cli.command {
        Command::Serve { listen } => {
            let (db, cipher) = open(&s).await?;
            let listen = listen.unwrap_or_else(|| s.listen.clone());
            serve(db, cipher, &listen, &s, |addr| {
                println!(
                    "Siyu is serving on http://{addr}/console ({})",
                    redact_url(&s.database_url)
                );
            })
            .await?;
        }
        Command::Demo(args) => demo_cmd::run(&s, args).await?,
        Command::Import(ImportCommand::Orders(a)) => return import_orders(&s, a).await,
        Command::Import(ImportCommand::Statuses { tenant }) => {
            let (db, _) = open(&s).await?;
            let tenant = tenant_id_for(&db, tenant.as_deref()).await?;
            let map = status_map::load(&db, tenant).await?;
            let texts = status_map::texts(&db, tenant, &map).await?;
            if texts.is_empty() {
                println!("every order's status is one Siyu reads");
            }
            for t in texts {
                println!(
                    "{:<24} {:<10} {:>8} orders{}",
                    t.text,
                    t.status,
                    t.orders,
                    if t.mapped {
                        "  (import.status_map)"
                    } else {
                        ""
                    }
                );
            }
            db.close().await;
        }
        Command::Import(ImportCommand::MapStatus {
            text,
            status,
            remove,
            tenant,
        }) => {
            let (db, _) = open(&s).await?;
            let tenant = tenant_id_for(&db, tenant.as_deref()).await?;
            let map = status_map::load(&db, tenant).await?;
            let mut entries: Vec<(String, String)> = map
                .entries()
                .filter(|(t, _)| *t != text.trim())
                .map(|(t, s)| (t.to_owned(), s.as_str().to_owned()))
                .collect();
            if !remove {
                entries.push((text.clone(), status.unwrap_or_default()));
            }
            let map = status_map::StatusMap::new(entries)?;
            let now = siyu::platform::clock::now_ms();
            let changed = siyu::workflows::status_map_saved(&db, tenant, &map, now).await?;
            println!("saved; {changed} orders re-read");
            db.close().await;
        }
        Command::Tenant(TenantCommand::Create { name }) => {
            let (db, _) = open(&s).await?;
            let t = access::create_tenant(&db, &name).await?;
            let key = access::create_api_key(&db, t.id, "default", Role::Admin).await?;
            println!("tenant {} created (id {})", t.name, t.id);
            println!("API key (shown once, store it now): {key}");
        }
        Command::User(UserCommand::Create {
            tenant,
            username,
            password,
            role,
            name,
        }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            let role = Role::parse(&role).with_context(|| format!("unknown role {role}"))?;
            let id = access::add_user(
                &db,
                t.id,
                &username,
                name.as_deref().unwrap_or(&username),
                &password,
                role,
                &cli_actor(),
            )
            .await?;
            println!(
                "user {username} created in {} (id {id}, role {})",
                t.name,
                role.as_str()
            );
        }
        Command::User(UserCommand::Disable { tenant, username }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            access::disable_user(&db, t.id, &username, &cli_actor()).await?;
            println!(
                "user {username} of {} disabled; their sessions ended",
                t.name
            );
        }
        Command::User(UserCommand::Password {
            tenant,
            username,
            password,
        }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            access::set_password(&db, t.id, &username, &password, &cli_actor()).await?;
            println!(
                "user {username} of {} has a new password; their sessions ended",
                t.name
            );
        }
        Command::Key(KeyCommand::Create { tenant, name, role }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            let role = Role::parse(&role).with_context(|| format!("unknown role {role}"))?;
            let key = access::issue_api_key(&db, t.id, &name, role, &cli_actor()).await?;
            println!("API key {name} ({}) for {}", role.as_str(), t.name);
            println!("API key (shown once, store it now): {key}");
        }
        Command::Key(KeyCommand::List { tenant }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            for k in access::api_keys(&db, t.id).await? {
                let state = match k.revoked_at {
                    Some(at) => format!("revoked {}", siyu::platform::clock::format_local(at)),
                    None => "active".into(),
                };
                println!("{}…  {:<9} {:<24} {state}", k.prefix, k.role, k.name);
            }
        }
        Command::Key(KeyCommand::Revoke { tenant, prefix }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            access::revoke_api_key(&db, t.id, &prefix, &cli_actor()).await?;
            println!("API key {prefix}… of {} revoked", t.name);
        }
        Command::Key(KeyCommand::Rotate { tenant, prefix }) => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            let key = access::rotate_api_key(&db, t.id, &prefix, &cli_actor()).await?;
            println!("API key {prefix}… of {} revoked; its replacement:", t.name);
            println!("API key (shown once, store it now): {key}");
        }
        Command::Audit { tenant, limit } => {
            let (db, _) = open(&s).await?;
            let t = access::tenant_by_name(&db, &tenant).await?;
            for e in access::audit_log(&db, t.id, limit).await? {
                println!(
                    "{}  {:<24} {:<18} {}",
                    siyu::platform::clock::format_local(e.at),
                    e.actor,
                    e.action,
                    e.subject
                );
            }
        }
        Command::Migrate => {
            let (db, _) = open(&s).await?;
            println!("database is up to date ({})", redact_url(&s.database_url));
            db.close().await;
        }
        Command::Bench(a) => bench::run(&s, a).await?,
        Command::Shop(c) => sync_cmd::shop(&s, c).await?,
        Command::Sync { tenant, shop } => return sync_cmd::sync(&s, tenant, shop).await,
        Command::Segment(c) => layering_cmd::segment(&s, c).await?,
        Command::Rfm(a) => layering_cmd::rfm(&s, a).await?,
    }
    Ok(true)
}
