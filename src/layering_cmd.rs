//! `siyu segment count` and `siyu rfm`: layering from the command line, on the index built
//! from the store.

use siyu::platform::TenantId;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use siyu::know::audience::{build_index, sql as rule_sql};
use siyu::know::profile;
use siyu::know::rfm::{ALL_CLASSES, ALL_STAGES};
use siyu::know::rule::Rule;
use siyu::platform::clock::now_ms;
use siyu::platform::config::Settings;
use siyu::platform::db::Db;
use siyu::platform::runtime::open;

#[derive(Subcommand)]
pub enum SegmentCommand {
    /// Count the customers a rule selects (a JSON rule file; `-` reads standard input).
    Count {
        #[arg(long)]
        rule: PathBuf,
        #[arg(long)]
        tenant: Option<String>,
        /// Also count with SQL on the store, for comparison.
        #[arg(long)]
        sql: bool,
    },
}

#[derive(Args)]
pub struct RfmArgs {
    #[arg(long)]
    tenant: Option<String>,
    /// Recompute purchase figures, scores and stages first.
    #[arg(long)]
    recompute: bool,
}

fn read_rule(path: &PathBuf) -> anyhow::Result<Rule> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the rule from stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(Rule::from_json(&v)?)
}

async fn index_for(db: &Db, tenant: TenantId) -> anyhow::Result<siyu::know::audience::TenantIndex> {
    let pb = crate::progress_bar(0, "building the audience index");
    let t = Instant::now();
    let ix = build_index(db, tenant, now_ms(), |done, all| {
        pb.set_length(all);
        pb.set_position(done);
    })
    .await?;
    pb.finish_and_clear();
    eprintln!(
        "index of {} customers built in {:.2} s",
        ix.universe.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(ix)
}

pub async fn segment(s: &Settings, c: SegmentCommand) -> anyhow::Result<()> {
    let SegmentCommand::Count { rule, tenant, sql } = c;
    let rule = read_rule(&rule)?;
    let (db, _) = open(s).await?;
    let tenant = crate::tenant_id_for(&db, tenant.as_deref()).await?;
    let ix = index_for(&db, tenant).await?;
    let now = now_ms();
    let t = Instant::now();
    let n = ix.query(now).count(&rule);
    println!(
        "{n} customers (counted by the index in {:.3} ms)",
        t.elapsed().as_secs_f64() * 1000.0
    );
    if sql {
        let t = Instant::now();
        let m = rule_sql::count(&db, tenant, &rule, now).await?;
        println!(
            "{m} customers (counted by SQL in {:.1} ms)",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    db.close().await;
    Ok(())
}

pub async fn rfm(s: &Settings, a: RfmArgs) -> anyhow::Result<()> {
    let (db, _) = open(s).await?;
    let tenant = crate::tenant_id_for(&db, a.tenant.as_deref()).await?;
    if a.recompute {
        let m = profile::recompute_all(&db, tenant, now_ms()).await?;
        eprintln!("recomputed {} buyers", m.customers);
    }
    let (settings, model) = profile::settings(&db, tenant).await?;
    let ix = index_for(&db, tenant).await?;
    let total = ix.universe.len().max(1) as f64;
    println!("RFM class                             customers   share");
    for (c, n) in ALL_CLASSES.iter().zip(ix.class_sizes()) {
        println!(
            "{:<8} {:<28} {n:>9} {:>6.1}%",
            c.zh(),
            c.en(),
            n as f64 * 100.0 / total
        );
    }
    println!();
    println!("stage                                 customers   share");
    for (st, n) in ALL_STAGES.iter().zip(ix.stage_sizes()) {
        println!(
            "{:<8} {:<28} {n:>9} {:>6.1}%",
            st.zh(),
            st.en(),
            n as f64 * 100.0 / total
        );
    }
    match model {
        Some(m) => println!(
            "\nwindow {} days; cut points R {:?} days, F {:?} orders, M {:?} fen; score means {:.2} {:.2} {:.2}",
            settings.window_days, m.r_cuts, m.f_cuts, m.m_cuts, m.means[0], m.means[1], m.means[2]
        ),
        None => println!("\nno figures yet: run `siyu rfm --recompute` (or import orders)"),
    }
    db.close().await;
    Ok(())
}
