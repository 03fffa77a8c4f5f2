//! `siyu demo`: a believable beauty brand, built offline.
//!
//! People shop on Tmall, JD, Douyin, PDD, Youzan and in stores; each platform's export writes
//! their phone its own way (or masks it), in its own encoding and date format. The demo writes
//! those exports, imports them through the same path as `siyu import orders`, and reports what
//! OneID made of them.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Timelike};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use siyu::know::import::{ImportOptions, presets};
use siyu::platform::clock::{china, now_ms};

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高",
];
const GIVEN: &[&str] = &[
    "静", "丽", "敏", "婷", "雪", "芳", "娜", "欣", "悦", "琳", "佳", "颖", "晨", "思", "雨", "梦",
    "洁", "慧", "倩", "瑶", "伟", "磊", "洋", "杰",
];
const PROVINCES: &[&str] = &[
    "广东", "浙江", "江苏", "上海", "北京", "四川", "山东", "湖北", "福建", "河南",
];

/// (sku, title, category, price in fen)
pub const CATALOG: &[(&str, &str, &str, i64)] = &[
    ("SK-101", "焕亮精华液 30ml", "护肤", 59_900),
    ("SK-102", "修护面霜 50g", "护肤", 45_900),
    ("SK-103", "氨基酸洁面 120g", "护肤", 8_900),
    ("SK-104", "保湿爽肤水 200ml", "护肤", 18_900),
    ("SK-105", "眼霜 15g", "护肤", 39_900),
    ("MU-201", "丝绒口红 #01", "彩妆", 26_900),
    ("MU-202", "持妆粉底液", "彩妆", 34_900),
    ("MU-203", "眼影盘", "彩妆", 29_900),
    ("FR-301", "木质香水 50ml", "香氛", 89_900),
    ("SET-401", "护肤体验装", "礼盒", 9_900),
];

/// The channels of the demo brand with the share of people who buy there and the chance that a
/// buyer there buys again (the store's repeat rate is about twice the online one, as the beauty
/// brand in STORIES.md reports).
const CHANNELS: &[(&str, f64, f64)] = &[
    ("tmall", 0.55, 0.20),
    ("jd", 0.22, 0.16),
    ("douyin", 0.25, 0.12),
    ("pdd", 0.12, 0.10),
    ("youzan", 0.12, 0.22),
    ("store", 0.22, 0.45),
];

struct Person {
    phone: String,
    name: String,
    province: &'static str,
}

/// A random order time in the two years before `now`, with 618 and Double 11 peaks.
fn order_time(rng: &mut StdRng, now: i64) -> i64 {
    let two_years = 730 * 86_400_000i64;
    loop {
        let t = now - rng.random_range(0..two_years);
        let Some(local) = china().timestamp_millis_opt(t).single() else {
            continue;
        };
        let (m, d) = (
            chrono::Datelike::month(&local),
            chrono::Datelike::day(&local),
        );
        // Accept every day with weight 1; 618 (Jun 1–18) ×4 and Double 11 (Nov 1–11) ×6.
        let weight = if m == 6 && d <= 18 {
            4.0
        } else if m == 11 && d <= 11 {
            6.0
        } else {
            1.0
        };
        // Shoppers buy in the evening more than at dawn.
        let hour_weight = match local.hour() {
            0..=6 => 0.3,
            20..=23 => 1.6,
            _ => 1.0,
        };
        if rng.random::<f64>() * 9.6 < weight * hour_weight {
            return t;
        }
    }
}

fn fmt_time(t: i64, style: u8) -> String {
    let l = china()
        .timestamp_millis_opt(t)
        .single()
        .map(|d| d.naive_local())
        .unwrap_or_default();
    match style {
        0 => l.format("%Y/%-m/%-d %H:%M:%S").to_string(),
        1 => l.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => l.format("%Y-%m-%d %H:%M").to_string(),
    }
}

fn yuan_plain(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn yuan_export(fen: i64) -> String {
    let s = siyu::know::report::yuan(siyu::platform::Fen::new(fen));
    s.replace('¥', "￥")
}

/// How far back the "history" export reaches; later orders go to the "recent" export, as a brand
/// imports two years of history once and then the latest months.
const RECENT_DAYS: i64 = 90;

/// One platform's exports being written, in its encoding: a history file and a recent file.
struct Export {
    paths: [PathBuf; 2],
    gbk: bool,
    /// Orders at or after this time go to the recent file.
    cutoff: i64,
    out: [Vec<u8>; 2],
    /// Rows waiting to be written in time order: (order time, order sequence, cells).
    pending: Vec<(i64, u64, Vec<String>)>,
}

impl Export {
    fn new(dir: &Path, name: &str, gbk: bool, bom: bool, header: &[&str], now: i64) -> Export {
        let mut e = Export {
            paths: [
                dir.join(format!("{name}_history.csv")),
                dir.join(format!("{name}_recent.csv")),
            ],
            gbk,
            cutoff: now - RECENT_DAYS * 86_400_000,
            out: [Vec::new(), Vec::new()],
            pending: Vec::new(),
        };
        let header: Vec<String> = header.iter().map(|s| s.to_string()).collect();
        for f in 0..2 {
            if bom {
                e.out[f].extend_from_slice(&[0xEF, 0xBB, 0xBF]);
            }
            e.row(f, &header);
        }
        e
    }
    fn row(&mut self, file: usize, cells: &[String]) {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            if c.contains([',', '"', '\n']) {
                line.push('"');
                line.push_str(&c.replace('"', "\"\""));
                line.push('"');
            } else {
                line.push_str(c);
            }
        }
        line.push_str("\r\n");
        if self.gbk {
            self.out[file].extend_from_slice(&encoding_rs::GBK.encode(&line).0);
        } else {
            self.out[file].extend_from_slice(line.as_bytes());
        }
    }
    /// Queues an order row; exports list orders by time, not by buyer.
    fn push(&mut self, t: i64, seq: u64, cells: Vec<String>) {
        self.pending.push((t, seq, cells));
    }
    /// Writes the queued rows in time order (rows of one order stay together, in line order).
    fn flush(&mut self) {
        let mut rows = std::mem::take(&mut self.pending);
        rows.sort_by_key(|(t, seq, _)| (*t, *seq));
        for (t, _, cells) in rows {
            let file = usize::from(t >= self.cutoff);
            self.row(file, &cells);
        }
    }
    /// Writes both files and returns (history, recent).
    fn finish(mut self) -> std::io::Result<(PathBuf, PathBuf)> {
        self.flush();
        for (path, out) in self.paths.iter().zip(&self.out) {
            let mut f = std::fs::File::create(path)?;
            f.write_all(out)?;
            f.sync_all()?;
        }
        let [history, recent] = self.paths;
        Ok((history, recent))
    }
}

/// A demo export: the file, its platform, and the import options (the platform's preset) that
/// read it.
#[derive(Debug, Clone)]
pub struct DemoFile {
    pub path: PathBuf,
    pub platform: &'static str,
    pub options: ImportOptions,
}

/// Writes the brand's exports for `customers` people into `dir`, with two years of orders up
/// to now.
pub fn write_exports(
    dir: &Path,
    customers: u64,
    seed: u64,
    progress: impl FnMut(u64),
) -> std::io::Result<Vec<DemoFile>> {
    write_exports_at(dir, customers, seed, now_ms(), progress)
}

/// [`write_exports`] as of `now` (UTC milliseconds). Same seed and same `now`, same files; the
/// seed alone is not enough, since order dates are drawn relative to `now`.
pub fn write_exports_at(
    dir: &Path,
    customers: u64,
    seed: u64,
    now: i64,
    mut progress: impl FnMut(u64),
) -> std::io::Result<Vec<DemoFile>> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tmall = Export::new(
        dir,
        "tmall_orders",
        true,
        false,
        &[
            "订单编号",
            "买家会员名",
            "收货人姓名",
            "联系手机",
            "订单状态",
            "订单创建时间",
            "订单付款时间",
            "买家实际支付金额",
            "退款金额",
            "宝贝标题",
            "商家编码",
            "宝贝类目",
            "宝贝总数量",
            "宝贝单价",
            "收货地址省份",
        ],
        now,
    );
    let mut jd = Export::new(
        dir,
        "jd_orders",
        false,
        true,
        &[
            "订单号",
            "下单帐号",
            "客户姓名",
            "联系电话",
            "订单状态",
            "下单时间",
            "付款确认时间",
            "应付金额",
            "商品名称",
            "商品ID",
            "商品类目",
            "订购数量",
            "京东价",
            "省份",
        ],
        now,
    );
    let mut douyin = Export::new(
        dir,
        "douyin_orders",
        false,
        false,
        &[
            "主订单编号",
            "用户ID",
            "收件人",
            "收件人手机号",
            "订单状态",
            "订单提交时间",
            "支付完成时间",
            "订单应付金额",
            "选购商品",
            "商家编码",
            "商品类目",
            "商品数量",
            "商品单价",
            "省",
        ],
        now,
    );
    let mut pdd = Export::new(
        dir,
        "pdd_orders",
        true,
        false,
        &[
            "订单号",
            "买家ID",
            "收货人",
            "手机",
            "订单状态",
            "订单成交时间",
            "支付时间",
            "用户实付金额(元)",
            "商品",
            "商家编码-SKU维度",
            "商品类目",
            "商品数量(件)",
            "商品单价(元)",
            "省",
        ],
        now,
    );
    let mut youzan = Export::new(
        dir,
        "youzan_orders",
        false,
        true,
        &[
            "订单号",
            "买家ID",
            "收货人",
            "买家手机号",
            "订单状态",
            "下单时间",
            "付款时间",
            "订单实付金额",
            "退款金额",
            "商品名称",
            "商品编码",
            "商品分组",
            "商品数量",
            "商品单价",
        ],
        now,
    );
    let mut pos = Export::new(
        dir,
        "store_pos",
        false,
        true,
        &[
            "单号",
            "门店",
            "导购",
            "会员卡号",
            "会员姓名",
            "手机号",
            "销售时间",
            "商品编码",
            "商品名称",
            "品类",
            "数量",
            "单价",
            "实收金额",
            "状态",
        ],
        now,
    );
    let mut order_seq: u64 = 0;
    for n in 0..customers {
        if n % 1000 == 0 {
            progress(n);
        }
        // Rows are sorted by time within blocks of people, so memory stays bounded at any size.
        if n % 20_000 == 0 && n > 0 {
            for e in [
                &mut tmall,
                &mut jd,
                &mut douyin,
                &mut pdd,
                &mut youzan,
                &mut pos,
            ] {
                e.flush();
            }
        }
        let p = Person {
            phone: format!(
                "1{}{:09}",
                [3, 5, 7, 8, 9][rng.random_range(0..5)],
                rng.random_range(0..1_000_000_000u64)
            ),
            name: format!(
                "{}{}",
                SURNAMES[rng.random_range(0..SURNAMES.len())],
                GIVEN[rng.random_range(0..GIVEN.len())]
            ),
            province: PROVINCES[rng.random_range(0..PROVINCES.len())],
        };
        // Everyone buys somewhere; most in one channel, some in several.
        let mut chosen: Vec<usize> = (0..CHANNELS.len())
            .filter(|&i| rng.random::<f64>() < CHANNELS[i].1 * 0.8)
            .collect();
        if chosen.is_empty() {
            chosen.push(rng.random_range(0..3));
        }
        for ci in chosen {
            let (channel, _, repeat) = CHANNELS[ci];
            let mut orders = 1;
            while orders < 12 && rng.random::<f64>() < repeat {
                orders += 1;
            }
            let buyer_id = format!(
                "{}_{:x}{:04}",
                &channel[..2],
                n * 7919 + ci as u64,
                rng.random_range(0..10_000)
            );
            for _ in 0..orders {
                order_seq += 1;
                let t = order_time(&mut rng, now);
                let paid = t + rng.random_range(5_000..600_000);
                let lines: Vec<&(&str, &str, &str, i64)> = (0..rng.random_range(1..=2))
                    .map(|_| &CATALOG[rng.random_range(0..CATALOG.len())])
                    .collect();
                let qty: Vec<i64> = lines
                    .iter()
                    .map(|_| if rng.random::<f64>() < 0.85 { 1 } else { 2 })
                    .collect();
                let gross: i64 = lines.iter().zip(&qty).map(|(l, q)| l.3 * q).sum();
                // Platform coupons and full-reduction offers.
                let discount = if rng.random::<f64>() < 0.4 {
                    gross / 10
                } else {
                    0
                };
                let amount = gross - discount;
                let roll = rng.random::<f64>();
                let (status_zh, refund) = if roll < 0.05 {
                    ("已退款", amount)
                } else if roll < 0.07 {
                    ("交易关闭", 0)
                } else if t > now - 5 * 86_400_000 {
                    ("卖家已发货", 0)
                } else {
                    ("交易成功", 0)
                };
                for (li, (line, q)) in lines.iter().zip(&qty).enumerate() {
                    let first = li == 0;
                    match channel {
                        "tmall" => {
                            // Tmall masks most receivers' phones since 2021.
                            let phone = if rng.random::<f64>() < 0.55 {
                                format!("{}****{}", &p.phone[..3], &p.phone[7..])
                            } else {
                                p.phone.clone()
                            };
                            tmall.push(
                                t,
                                order_seq,
                                vec![
                                    format!("{}{:010}", 3_000_000_000u64 + n % 97, order_seq),
                                    buyer_id.clone(),
                                    p.name.clone(),
                                    phone,
                                    status_zh.to_string(),
                                    fmt_time(t, 0),
                                    fmt_time(paid, 0),
                                    yuan_export(amount),
                                    if first {
                                        yuan_plain(refund)
                                    } else {
                                        "0.00".into()
                                    },
                                    line.1.to_string(),
                                    line.0.to_string(),
                                    line.2.to_string(),
                                    q.to_string(),
                                    yuan_plain(line.3),
                                    p.province.to_string(),
                                ],
                            )
                        }
                        "jd" => jd.push(
                            t,
                            order_seq,
                            vec![
                                format!("=\"{}\"", 280_000_000_000u64 + order_seq),
                                buyer_id.clone(),
                                p.name.clone(),
                                format!(
                                    "+86 {}-{}-{}",
                                    &p.phone[..3],
                                    &p.phone[3..7],
                                    &p.phone[7..]
                                ),
                                match status_zh {
                                    "交易成功" => "已完成",
                                    "交易关闭" => "已取消",
                                    "卖家已发货" => "等待确认收货",
                                    s => s,
                                }
                                .to_string(),
                                fmt_time(t, 1),
                                fmt_time(paid, 1),
                                yuan_plain(amount),
                                line.1.to_string(),
                                line.0.to_string(),
                                line.2.to_string(),
                                q.to_string(),
                                yuan_plain(line.3),
                                p.province.to_string(),
                            ],
                        ),
                        "douyin" => douyin.push(
                            t,
                            order_seq,
                            vec![
                                format!("69{:016}", order_seq),
                                buyer_id.clone(),
                                p.name.clone(),
                                format!("{} {} {}", &p.phone[..3], &p.phone[3..7], &p.phone[7..]),
                                match status_zh {
                                    "交易成功" => "已完成",
                                    "交易关闭" => "已关闭",
                                    "卖家已发货" => "已发货",
                                    s => s,
                                }
                                .to_string(),
                                fmt_time(t, 2),
                                fmt_time(paid, 2),
                                yuan_plain(amount),
                                line.1.to_string(),
                                line.0.to_string(),
                                line.2.to_string(),
                                q.to_string(),
                                yuan_plain(line.3),
                                p.province.to_string(),
                            ],
                        ),
                        "pdd" => {
                            let phone = if rng.random::<f64>() < 0.7 {
                                format!("{}****{}", &p.phone[..3], &p.phone[7..])
                            } else {
                                format!("86{}", p.phone)
                            };
                            pdd.push(
                                t,
                                order_seq,
                                vec![
                                    format!("{}-{:015}", 240_000 + n % 1000, order_seq),
                                    buyer_id.clone(),
                                    p.name.clone(),
                                    phone,
                                    match status_zh {
                                        "交易成功" => "已收货",
                                        "交易关闭" => "已取消",
                                        "卖家已发货" => "已发货",
                                        s => s,
                                    }
                                    .to_string(),
                                    fmt_time(t, 1),
                                    fmt_time(paid, 1),
                                    yuan_plain(amount),
                                    line.1.to_string(),
                                    line.0.to_string(),
                                    line.2.to_string(),
                                    q.to_string(),
                                    yuan_plain(line.3),
                                    p.province.to_string(),
                                ],
                            )
                        }
                        "youzan" => youzan.push(
                            t,
                            order_seq,
                            vec![
                                format!("E{:020}", order_seq),
                                buyer_id.clone(),
                                p.name.clone(),
                                // Full-width digits, as some H5 forms store them.
                                if rng.random::<f64>() < 0.2 {
                                    p.phone
                                        .chars()
                                        .map(|c| {
                                            char::from_u32(c as u32 - '0' as u32 + '０' as u32)
                                                .unwrap_or(c)
                                        })
                                        .collect()
                                } else {
                                    p.phone.clone()
                                },
                                match status_zh {
                                    "交易成功" => "交易成功",
                                    "交易关闭" => "交易关闭",
                                    "卖家已发货" => "已发货",
                                    s => s,
                                }
                                .to_string(),
                                fmt_time(t, 1),
                                fmt_time(paid, 1),
                                yuan_plain(amount),
                                if first {
                                    yuan_plain(refund)
                                } else {
                                    "0.00".into()
                                },
                                line.1.to_string(),
                                line.0.to_string(),
                                line.2.to_string(),
                                q.to_string(),
                                yuan_plain(line.3),
                            ],
                        ),
                        _ => {
                            let store = format!("S{:03}", (n % 12) + 1);
                            pos.push(
                                t,
                                order_seq,
                                vec![
                                    format!("{store}-{:08}", order_seq),
                                    store.clone(),
                                    format!("G{:03}", (n % 40) + 1),
                                    format!("M{:08}", n + 1),
                                    p.name.clone(),
                                    p.phone.clone(),
                                    fmt_time(t, 1),
                                    line.0.to_string(),
                                    line.1.to_string(),
                                    line.2.to_string(),
                                    q.to_string(),
                                    yuan_plain(line.3),
                                    yuan_plain(amount),
                                    match status_zh {
                                        "已退款" => "已退款",
                                        "交易关闭" => "已取消",
                                        _ => "已完成",
                                    }
                                    .to_string(),
                                ],
                            )
                        }
                    }
                }
            }
        }
    }
    progress(customers);
    // History first, then the recent months: what a brand does, and what makes OneID merge
    // (a buyer known only by a masked phone in history meets their full phone later).
    let mut history = Vec::new();
    let mut recent = Vec::new();
    for (e, preset) in [
        (tmall, "tmall"),
        (jd, "jd"),
        (douyin, "douyin"),
        (pdd, "pdd"),
        (youzan, "youzan"),
        (pos, "pos"),
    ] {
        let (h, r) = e.finish()?;
        let options = ImportOptions::new(
            presets::preset(preset)
                .ok_or_else(|| std::io::Error::other(format!("no import preset {preset}")))?,
        );
        history.push(DemoFile {
            path: h,
            platform: preset,
            options: options.clone(),
        });
        recent.push(DemoFile {
            path: r,
            platform: preset,
            options,
        });
    }
    history.extend(recent);
    Ok(history)
}
