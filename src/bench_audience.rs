//! `siyu bench --suite audience`: the audience index on millions of synthetic customers, against
//! the same rules as SQL on SQLite and PostgreSQL.
//!
//! The data is generated inside each database by the same integer formulas, so both backends
//! hold the same customers and every engine must return the same counts (the run checks this).

use crate::bench::median;
use siyu::platform::TenantId;
use std::time::Instant;

use serde_json::json;

use siyu::know::audience::{build_index, sql as rule_sql};
use siyu::know::rule::Rule;
use siyu::platform::clock::now_ms;
use siyu::platform::db::{Backend, Db, sql};

use crate::bench::{BenchArgs, scratch};

const DAY: i64 = 86_400_000;
const CHUNK: i64 = 500_000;

/// `h(x, k)`: a pseudo-random 32-bit value per customer and field, the same in both dialects.
pub(crate) fn h(k: usize) -> String {
    const P: [i64; 8] = [
        2_654_435_761,
        2_246_822_519,
        3_266_489_917,
        668_265_263,
        374_761_393,
        1_181_783_497,
        3_812_015_801,
        2_870_177_450,
    ];
    format!("((x * {}) % 4294967291)", P[k % P.len()])
}

/// The id sequence `lo..=hi` as a row source with column `x`, in the backend's dialect.
pub(crate) fn seq(backend: Backend, lo: i64, hi: i64) -> (String, String) {
    match backend {
        Backend::Sqlite => (
            format!(
                "WITH RECURSIVE seq(x) AS (SELECT {lo} UNION ALL SELECT x + 1 FROM seq WHERE x < {hi}) "
            ),
            "seq".into(),
        ),
        Backend::Postgres => (
            String::new(),
            format!("generate_series({lo}::bigint, {hi}::bigint) AS seq(x)"),
        ),
    }
}

const INDEXES: &[(&str, &str)] = &[
    (
        "customer_tags_tag",
        "CREATE INDEX customer_tags_tag ON customer_tags (tenant_id, tag_id, customer_id)",
    ),
    (
        "customer_attributes_value",
        "CREATE INDEX customer_attributes_value ON customer_attributes (tenant_id, name, value)",
    ),
    (
        "customer_attributes_num",
        "CREATE INDEX customer_attributes_num ON customer_attributes (tenant_id, name, num)",
    ),
    (
        "events_type",
        "CREATE INDEX events_type ON events (tenant_id, type, occurred_at)",
    ),
    (
        "events_customer",
        "CREATE INDEX events_customer ON events (tenant_id, customer_id, occurred_at)",
    ),
    (
        "customer_stats_class",
        "CREATE INDEX customer_stats_class ON customer_stats (tenant_id, rfm_class)",
    ),
    (
        "customer_stats_stage",
        "CREATE INDEX customer_stats_stage ON customer_stats (tenant_id, stage)",
    ),
];

/// Fills the tenant with `n` customers: ~3 tags each over 200 tags (skewed: the first tags are
/// common, the last rare), a city for 70%, purchase figures for 60%, and page views in the
/// last 60 days for 20%.
async fn generate(db: &Db, tenant: TenantId, n: i64, now: i64, label: &str) -> anyhow::Result<()> {
    let b = db.backend();
    for (name, _) in INDEXES {
        db.execute(&sql(format!("DROP INDEX IF EXISTS {name}")))
            .await?;
    }
    let pb = crate::progress_bar(n as u64, &format!("{label}: generating customers"));
    let mut lo = 1;
    while lo <= n {
        let hi = (lo + CHUNK - 1).min(n);
        let (with, from) = seq(b, lo, hi);
        let mut tx = db.begin().await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO customers (id, tenant_id, created_at) SELECT x, {tenant}, 0 FROM {from}"
        )))
        .await?;
        // Three candidate tags per customer, tag = 1 + 200·u² (u uniform in [0, 1)).
        tx.execute(&sql(format!(
            "{with}INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, tagged_at) \
             SELECT DISTINCT {tenant}, x, 1 + (200 * (t % 10000) * (t % 10000)) / 100000000, 'bench', 0 FROM \
             (SELECT x, CASE j WHEN 0 THEN {h0} WHEN 1 THEN {h1} ELSE {h2} END AS t FROM {from} \
              CROSS JOIN (SELECT 0 AS j UNION ALL SELECT 1 UNION ALL SELECT 2) js) g",
            h0 = h(0),
            h1 = h(1),
            h2 = h(2)
        )))
        .await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO customer_attributes (tenant_id, customer_id, name, value, num, updated_at) \
             SELECT {tenant}, x, 'city', CASE {h3} % 10 WHEN 0 THEN '上海' WHEN 1 THEN '上海' WHEN 2 THEN '北京' \
             WHEN 3 THEN '广州' WHEN 4 THEN '深圳' WHEN 5 THEN '杭州' WHEN 6 THEN '成都' WHEN 7 THEN '武汉' \
             WHEN 8 THEN '南京' ELSE '西安' END, NULL, 0 FROM {from} WHERE {h4} % 10 < 7",
            h3 = h(3),
            h4 = h(4)
        )))
        .await?;
        tx.execute(&sql(format!(
            "{with}INSERT INTO customer_stats (tenant_id, customer_id, first_order_at, repurchase_at, last_order_at, \
             order_count, spend, window_orders, window_spend, r_score, f_score, m_score, rfm_class, stage, computed_at) \
             SELECT {tenant}, x, last - (cnt - 1) * {month}, NULL, last, cnt, spend, cnt, spend, \
             1 + {h5} % 5, cnt, 1 + {h6} % 5, \
             CASE {h7} % 8 WHEN 0 THEN 'important_value' WHEN 1 THEN 'important_develop' WHEN 2 THEN 'important_keep' \
             WHEN 3 THEN 'important_retain' WHEN 4 THEN 'general_value' WHEN 5 THEN 'general_develop' \
             WHEN 6 THEN 'general_keep' ELSE 'general_retain' END, \
             CASE WHEN {now} - last < {d90} THEN 'active' WHEN {now} - last < {d180} THEN 'silent' \
             WHEN {now} - last < {d365} THEN 'dormant' ELSE 'churned' END, {now} FROM \
             (SELECT x, 1 + ({h1} % 100) * ({h1} % 100) / 2000 AS cnt, \
              (1 + ({h1} % 100) * ({h1} % 100) / 2000) * (3000 + {h2} % 60000) AS spend, \
              {now} - ({h3} % {secs730}) * 1000 AS last FROM {from} WHERE {h0} % 10 < 6) s",
            month = 30 * DAY,
            d90 = 90 * DAY,
            d180 = 180 * DAY,
            d365 = 365 * DAY,
            secs730 = 730 * DAY / 1000,
            h0 = h(5),
            h1 = h(6),
            h2 = h(7),
            h3 = h(0),
            h5 = h(1),
            h6 = h(2),
            h7 = h(3),
        )))
        .await?;
        // Page views: 1–3 each in the last 60 days for a fifth of the customers.
        tx.execute(&sql(format!(
            "{with}INSERT INTO events (id, tenant_id, event_key, customer_id, type, occurred_at, received_at, properties) \
             SELECT x * 4 + j, {tenant}, 'b' || CAST(x * 4 + j AS TEXT), x, 'page_view', \
             {now} - ((x * 7 + j * 13) * 2654435761 % 4294967291) % {d60}, 0, '{{}}' FROM {from} \
             CROSS JOIN (SELECT 0 AS j UNION ALL SELECT 1 UNION ALL SELECT 2) js \
             WHERE {h4} % 5 = 0 AND j <= {h5} % 3",
            d60 = 60 * DAY,
            h4 = h(4),
            h5 = h(5),
        )))
        .await?;
        tx.commit().await?;
        pb.set_position(hi as u64);
        lo = hi + 1;
    }
    pb.finish_and_clear();
    let pb = crate::progress_bar(0, &format!("{label}: indexing and analysing"));
    for (_, create) in INDEXES {
        db.execute(&sql(*create)).await?;
    }
    db.execute(&sql("ANALYZE")).await?;
    pb.finish_and_clear();
    Ok(())
}

/// Returns memory freed by earlier work (the data generation) to the system, so that resident
/// growth measures what the index keeps.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Case {
    name: &'static str,
    rule: Rule,
}

fn cases() -> anyhow::Result<Vec<Case>> {
    let r = |v: serde_json::Value| Rule::from_json(&v);
    Ok(vec![
        Case {
            name: "3 tag/attribute conditions: tag 3 ∧ tag 10 ∧ city = 上海",
            rule: r(json!({"and": [
                {"tags": {"any": [3]}}, {"tags": {"any": [10]}},
                {"attr": {"name": "city", "eq": "上海"}}
            ]}))?,
        },
        Case {
            name: "numeric range + 30-day event: spend 100–500 yuan ∧ page_view in 30 days",
            rule: r(json!({"and": [
                {"orders": {"spend": {"min": 10000, "max": 50000}}},
                {"event": {"type": "page_view", "days": 30}}
            ]}))?,
        },
        Case {
            name: "RFM and stage, minus a tag: important classes ∧ silent ∧ ¬tag 1",
            rule: r(json!({"and": [
                {"rfm": {"class": ["important_value", "important_develop", "important_keep", "important_retain"]}},
                {"stage": ["silent"]},
                {"not": {"tags": {"any": [1]}}}
            ]}))?,
        },
    ])
}

pub async fn run(a: &BenchArgs) -> anyhow::Result<()> {
    let n = a.customers as i64;
    let now = now_ms();
    let cases = cases()?;
    let mut backends = vec!["sqlite"];
    if a.postgres.is_some() && !a.index_only {
        backends.push("postgres");
    }
    println!("| measurement | backend | result |");
    println!("|---|---|---:|");
    let mut index_counts: Option<Vec<u64>> = None;
    let mut index_medians: Vec<f64> = Vec::new();
    let mut built_medians: Vec<f64> = Vec::new();
    let mut sql_rows = Vec::new();
    for b in &backends {
        let s = scratch(b, a.postgres.as_deref()).await?;
        let tenant = siyu::platform::access::create_tenant(&s.db, "bench")
            .await?
            .id;
        let t = Instant::now();
        generate(&s.db, tenant, n, now, b).await?;
        println!(
            "| generate {n} customers in the store | {b} | {:.1} s |",
            t.elapsed().as_secs_f64()
        );

        release_freed_memory();
        let rss0 = rss_mib();
        let pb = crate::progress_bar(n as u64, &format!("{b}: building the index"));
        let t = Instant::now();
        let ix = build_index(&s.db, tenant, now, |done, _| pb.set_position(done)).await?;
        let build = t.elapsed().as_secs_f64();
        pb.finish_and_clear();
        release_freed_memory();
        let rss1 = rss_mib();
        let size = ix.size();
        println!(
            "| build the index from the store ({} customers, {} bitmaps) | {b} | {build:.1} s |",
            size.customers, size.bitmaps
        );
        println!(
            "| index memory: resident growth (estimated size) | {b} | {:.0} MiB ({:.0} MiB) |",
            rss1 - rss0,
            size.bytes as f64 / 1_048_576.0
        );

        // The index answers the same whatever store it was built from: time it once.
        let q = ix.query(now);
        let counts: Vec<u64> = cases.iter().map(|c| q.count(&c.rule)).collect();
        if index_counts.is_none() {
            for c in &cases {
                let mut times = Vec::with_capacity(201);
                for _ in 0..201 {
                    let t = Instant::now();
                    std::hint::black_box(q.count(&c.rule));
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                index_medians.push(median(times));
                // The same count by building every set and taking the size of the result:
                // what counting without materialising saves, in this run.
                let mut times = Vec::with_capacity(51);
                for _ in 0..51 {
                    let t = Instant::now();
                    std::hint::black_box(q.members(&c.rule).len());
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                built_medians.push(median(times));
            }
        }
        match &index_counts {
            None => index_counts = Some(counts.clone()),
            Some(prev) => anyhow::ensure!(
                prev == &counts,
                "the index built from {b} counts {counts:?}, another backend {prev:?}"
            ),
        }
        drop(ix);

        for (i, c) in cases.iter().enumerate() {
            if a.index_only {
                break;
            }
            let mut times = Vec::new();
            let mut got = 0;
            for _ in 0..3 {
                let t = Instant::now();
                got = rule_sql::count(&s.db, tenant, &c.rule, now).await?;
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::ensure!(
                got == counts[i],
                "{b} SQL counts {got} for {:?}, the index {}",
                c.name,
                counts[i]
            );
            sql_rows.push((b.to_string(), i, median(times)));
        }
        s.finish().await?;
    }
    let counts = index_counts.unwrap_or_default();
    for (i, c) in cases.iter().enumerate() {
        println!(
            "| count: {} → {} customers | index (median of 201) | {:.3} ms |",
            c.name, counts[i], index_medians[i]
        );
        println!(
            "| count: {} | index, building the whole result set (median of 51) | {:.3} ms |",
            c.name, built_medians[i]
        );
        for (b, j, ms) in &sql_rows {
            if *j == i {
                println!(
                    "| count: {} | SQL on {b} (median of 3) | {:.0} ms ({:.0}× the index) |",
                    c.name,
                    ms,
                    ms / index_medians[i].max(1e-6)
                );
            }
        }
    }
    Ok(())
}
