//! The audience index alone, in memory: a synthetic brand of customers (1,000,000 unless
//! `SIYU_BENCH_CUSTOMERS` says otherwise) loaded as facts, then each rule counted by the index's
//! planned path and, as a check, by testing every customer one by one. Run with
//! `cargo bench -p siyu-audience`; the server's `siyu bench --suite audience` measures the same
//! index loaded from a real store and compares it with SQL and DuckDB.

use std::time::Instant;

use siyu_audience::index::{ChannelFigures, Facts, StatsFact, TenantIndex};
use siyu_audience::rfm::{ALL_CLASSES, ALL_STAGES};
use siyu_audience::rule::Rule;

const DAY_MS: i64 = siyu_audience::rfm::DAY_MS;
const NOW: i64 = 1_796_400_000_000; // 2026-12-05 00:00 in China
const CHANNELS: [&str; 6] = ["tmall", "jd", "douyin", "pdd", "youzan", "store"];

/// splitmix64: the same brand on every run, without a dependency for it.
struct Dice(u64);
impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn brand(customers: u32) -> Facts {
    let mut d = Dice(7);
    let mut f = Facts::default();
    for id in 1..=customers {
        f.customers.push(id);
        // Two in three have bought; buyers have a class, a stage and channels.
        if d.below(3) > 0 {
            let orders = 1 + d.below(8) as i64;
            let spend = orders * (2_000 + d.below(60_000) as i64);
            f.stats.push((
                id,
                StatsFact {
                    order_count: orders,
                    spend,
                    last_order_at: NOW - d.below(720) as i64 * DAY_MS,
                    r: 1 + d.below(5) as u8,
                    f: 1 + d.below(5) as u8,
                    m: 1 + d.below(5) as u8,
                    class: ALL_CLASSES[d.below(8) as usize],
                    stage: ALL_STAGES[1 + d.below(5) as usize],
                },
            ));
            // One channel, or two sharing the orders; each with its own figures.
            let first = CHANNELS[d.below(6) as usize];
            let second = (d.below(4) == 0).then(|| CHANNELS[d.below(6) as usize]);
            let on_first = match second {
                Some(s) if s != first && orders > 1 => orders / 2,
                _ => orders,
            };
            let mut add = |ch: &str, n: i64, d: &mut Dice| {
                f.channels.push((id, ch.to_owned()));
                f.channel_figures.push((
                    id,
                    ch.to_owned(),
                    ChannelFigures {
                        order_count: n as u32,
                        spend: spend * n / orders,
                        last_order_at: NOW - d.below(720) as i64 * DAY_MS,
                    },
                ));
            };
            add(first, on_first, &mut d);
            if let Some(s) = second.filter(|s| *s != first && orders > 1) {
                add(s, orders - on_first, &mut d);
            }
            f.categories.push((id, format!("category-{}", d.below(40))));
        }
        if d.below(2) == 0 {
            f.kinds.push((id, "phone".into()));
        }
        if d.below(5) == 0 {
            f.kinds.push((id, "external_userid".into()));
        }
        for _ in 0..d.below(3) {
            f.tags.push((id, 1 + d.below(50) as i64));
        }
        if d.below(3) == 0 {
            let age = 18 + d.below(50) as i64;
            f.attrs.push((id, "age".into(), age.to_string(), Some(age)));
        }
        if d.below(10) == 0 {
            f.events
                .push((id, "page_view".into(), NOW - d.below(30) as i64 * DAY_MS));
        }
    }
    f
}

const RULES: [(&str, &str); 7] = [
    ("one channel", r#"{"channel": ["tmall"]}"#),
    (
        "channels, orders and AOV",
        r#"{"and": [{"channel": ["tmall", "jd"]}, {"orders": {"count": {"min": 2}, "aov": {"min": 30000}}}]}"#,
    ),
    (
        "tags, not a WeCom contact",
        r#"{"and": [{"tags": {"any": [1, 2, 3]}}, {"not": {"identity": ["external_userid"]}}]}"#,
    ),
    (
        "RFM class or stage",
        r#"{"or": [{"rfm": {"class": ["important_value"]}}, {"stage": ["dormant"]}]}"#,
    ),
    (
        "attribute range, bought a category, 90–180 days silent",
        r#"{"and": [{"attr": {"name": "age", "range": {"min": 25, "max": 35}}}, {"bought": {"category": ["category-7"]}}, {"orders": {"last_order_days": {"min": 90, "max": 180}}}]}"#,
    ),
    (
        "viewed a page in 7 days",
        r#"{"event": {"type": "page_view", "days": 7}}"#,
    ),
    (
        "2+ orders on Tmall, the last there within 180 days",
        r#"{"channel_orders": {"channel": "tmall", "count": {"min": 2}, "last_order_days": {"max": 180}}}"#,
    ),
];

fn main() {
    let customers: u32 = std::env::var("SIYU_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let t = Instant::now();
    let facts = brand(customers);
    let made = t.elapsed();
    let t = Instant::now();
    let mut ix = TenantIndex::default();
    ix.insert(facts);
    let built = t.elapsed();
    let size = ix.size();
    println!(
        "audience index in memory: {customers} customers; facts made in {:.2} s, index built in {:.2} s; {} bitmaps, {:.1} MiB\n",
        made.as_secs_f64(),
        built.as_secs_f64(),
        size.bitmaps,
        size.bytes as f64 / 1_048_576.0
    );
    println!("| rule | matched | count, median of 21 (µs) | every customer tested (ms) | × |");
    println!("|---|---:|---:|---:|---:|");
    let q = ix.query(NOW);
    for (name, json) in RULES {
        let value: serde_json::Value = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(e) => panic!("{name}: {e}"),
        };
        let rule = match Rule::from_json(&value) {
            Ok(r) => r,
            Err(e) => panic!("{name}: {e}"),
        };
        let mut times = Vec::new();
        let mut matched = 0;
        for _ in 0..21 {
            let t = Instant::now();
            matched = std::hint::black_box(q.count(&rule));
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        let t = Instant::now();
        let by_one = ix.universe.iter().filter(|&id| q.test(&rule, id)).count() as u64;
        let one_by_one = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(
            matched, by_one,
            "{name}: the planned count and the customer-by-customer test differ"
        );
        println!(
            "| {name} | {matched} | {:.2} | {one_by_one:.1} | {:.0}× |",
            times[10],
            one_by_one * 1000.0 / times[10].max(f64::MIN_POSITIVE)
        );
    }
}
