//! Order import: broken rows are reported and good rows kept; the demo's exports give the same
//! customers in any order, on every backend; re-imports update instead of duplicating.

use crate::common;
use siyu::platform::TenantId;
use std::path::Path;

use siyu::know::import::presets::preset;
use siyu::know::import::{ImportOptions, import_file};
use siyu::platform::db::sql;
use siyu_demo::write_exports_at;

use common::{Backend, TestDb, cipher, partition};

const TMALL_HEADER: &str = "订单编号,买家会员名,收货人姓名,联系手机,订单状态,订单创建时间,订单付款时间,买家实际支付金额,退款金额,宝贝标题,商家编码,宝贝类目,宝贝总数量,宝贝单价";

fn broken_file(dir: &Path) -> std::path::PathBuf {
    let mut b: Vec<u8> = Vec::new();
    b.extend_from_slice(TMALL_HEADER.as_bytes());
    b.extend_from_slice(b"\n");
    let rows = [
        // line 2: good, Excel-quoted id, money with currency sign and thousands separator
        "=\"2024061812345\",tb_alice,张三,+86 138-0013-8000,交易成功,2024/6/18 10:01:02,2024/6/18 10:02:00,\"￥1,299.00\",0.00,焕亮精华液,SK-101,护肤,1,1299.00",
        // line 3: bad phone
        "2024061812346,tb_bob,李四,1380013800,交易成功,2024/6/18 10:01:02,,99.00,0,洁面,SK-103,护肤,1,99",
        // line 4: missing order id
        ",tb_carol,王五,13900139000,交易成功,2024/6/18 10:01:02,,99.00,0,洁面,SK-103,护肤,1,99",
        // line 5: bad amount, and a buyer name that a spreadsheet would run as a formula
        "2024061812348,@SUM(1+1),赵六,13700137000,交易成功,2024/6/18 10:01:02,,九十九,0,洁面,SK-103,护肤,1,99",
        // line 6: bad date
        "2024061812349,tb_erin,孙七,13600136000,交易成功,2024/13/45 10:01:02,,99.00,0,洁面,SK-103,护肤,1,99",
        // line 7: wrong column count
        "2024061812350,tb_frank,周八,13500135000,交易成功,2024/6/18 10:01:02,,99.00",
        // line 8: good, masked phone kept as a hint, buyer id identifies
        "2024061812351,tb_grace,吴九,138****8000,交易成功,2024-06-18 10:01,,199.00,0,面霜,SK-102,护肤,1,199",
    ];
    for r in rows {
        b.extend_from_slice(r.as_bytes());
        b.extend_from_slice(b"\n");
    }
    // line 9: an invalid byte sequence in the buyer name
    b.extend_from_slice(b"2024061812352,tb_heidi,\xff\xfe,13300133000,\xe4\xba\xa4\xe6\x98\x93\xe6\x88\x90\xe5\x8a\x9f,2024/6/18 10:01:02,,99.00,0,x,SK-103,x,1,99\n");
    // line 10: good; the same buyer as line 2 by phone written another way
    b.extend_from_slice("2024061812353,tb_alice2,张三,138 0013 8000,已付款,2024/6/19 09:00:00,,88.00,0,洁面,SK-103,护肤,1,88\n".as_bytes());
    // line 11: truncated last line (the export was cut off mid-row)
    b.extend_from_slice("2024061812354,tb_ivan,郑十,13200132000,交易成".as_bytes());
    let p = dir.join("tmall_broken.csv");
    std::fs::write(&p, b).expect("write");
    p
}

async fn broken_rows_are_reported_and_good_rows_kept(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let file = broken_file(dir.path());
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &file,
        &ImportOptions::new(preset("tmall").expect("preset")),
        None,
    )
    .await
    .expect("import");
    assert_eq!(
        (s.read, s.imported, s.rejected),
        (10, 3, 7),
        "{backend:?}: {s:#?}"
    );
    let by_line: Vec<(u64, &str, &str)> = s
        .errors
        .iter()
        .map(|e| (e.line, e.column.as_str(), e.reason.as_str()))
        .collect();
    let expect = [
        (3, "联系手机", "digits"),
        (4, "订单编号", "order id is missing"),
        (5, "买家实际支付金额", "not a number"),
        (6, "订单创建时间", "date"),
        (7, "", "expected 14 columns"),
        (9, "收货人姓名", "invalid UTF-8"),
        (11, "", "expected 14 columns"),
    ];
    assert_eq!(by_line.len(), expect.len(), "{by_line:?}");
    for ((line, col, reason), (wl, wc, wr)) in by_line.iter().zip(expect) {
        assert_eq!((*line, *col), (wl, wc), "{by_line:?}");
        assert!(
            reason.contains(wr),
            "line {line}: {reason:?} should mention {wr:?}"
        );
    }
    // The rejected file sits beside the input with every bad row and its reason.
    let rejected = std::fs::read_to_string(dir.path().join("tmall_broken.rejected.csv"))
        .expect("rejected file");
    assert_eq!(rejected.lines().count(), 1 + 7, "{rejected}");
    assert!(rejected.contains("2024061812348") && rejected.contains("九十九"));
    // Opening it in Excel runs nothing a buyer typed; the importer reads past the apostrophe.
    assert!(rejected.contains(",'@SUM(1+1),"), "{rejected}");
    assert!(!rejected.contains(",@SUM"), "{rejected}");
    // Lines 2 and 10 are one person (same phone, two buyer ids); line 8 another.
    let parts = partition(&tdb.db, TenantId::new(1)).await;
    assert_eq!(parts.len(), 2, "{parts:?}");
    let (amount, hint): (i64, Option<String>) = tdb
        .db
        .fetch_one(&sql("SELECT amount, phone_hint FROM orders WHERE tenant_id = 1 AND order_no = '2024061812351'"))
        .await
        .expect("order");
    assert_eq!((amount, hint.as_deref()), (19_900, Some("138****8000")));
    let (big,): (i64,) = tdb
        .db
        .fetch_one(&sql(
            "SELECT amount FROM orders WHERE tenant_id = 1 AND order_no = '2024061812345'",
        ))
        .await
        .expect("order");
    assert_eq!(big, 129_900);
    // No phone is stored in clear anywhere.
    let clear: Vec<(String,)> = tdb
        .db
        .fetch_all(&sql("SELECT ikey FROM identities WHERE ikey LIKE '%13800138000%' OR value_enc LIKE '%13800138000%'"))
        .await
        .expect("scan");
    assert!(clear.is_empty());
}
on_each_backend!(broken_rows_are_reported_and_good_rows_kept);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbk_exports_and_mapping_files_import() {
    let tdb = TestDb::new(common::Backend::Sqlite).await;
    let dir = tempfile::tempdir().expect("tmp");
    let text = "单据号,会员手机,下单日期,实收,渠道\r\nX-1,13800138000,2024-11-11 00:00:01,\"1,000.50\",xiaohongshu\r\nX-2,13900139000,2024-11-11,12,xiaohongshu\r\n";
    let gbk = encoding_rs::GBK.encode(text).0.into_owned();
    let file = dir.path().join("xhs.csv");
    std::fs::write(&file, gbk).expect("write");
    let mapping = dir.path().join("xhs.toml");
    std::fs::write(&mapping, "[columns]\norder_no = \"单据号\"\nphone = \"会员手机\"\nordered_at = \"下单日期\"\namount = \"实收\"\nchannel = \"渠道\"\n")
        .expect("write");
    let p =
        siyu::know::import::presets::load_mapping(&mapping, preset("generic").expect("generic"))
            .expect("mapping");
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &file,
        &ImportOptions::new(p),
        None,
    )
    .await
    .expect("import");
    assert_eq!((s.imported, s.rejected), (2, 0), "{s:#?}");
    assert_eq!(s.encoding, Some(siyu::know::import::TextEncoding::Gb18030));
    let (amount, channel): (i64, String) = tdb
        .db
        .fetch_one(&sql(
            "SELECT amount, channel FROM orders WHERE order_no = 'X-1'",
        ))
        .await
        .expect("order");
    assert_eq!((amount, channel.as_str()), (100_050, "xiaohongshu"));

    // A file without the columns a preset needs is refused as a whole, naming the column.
    let e = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &file,
        &ImportOptions::new(preset("jd").expect("jd")),
        None,
    )
    .await
    .expect_err("no order id column");
    assert!(
        e.to_string().contains("order_no") && e.to_string().contains("订单号"),
        "{e}"
    );
}

on_each_backend!(demo_exports_give_the_same_customers_in_any_order);
async fn demo_exports_give_the_same_customers_in_any_order(backend: common::Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    // A fixed "now": order dates are drawn relative to it, and these 400 people include some
    // that only merge when the files come in another order.
    let files = write_exports_at(dir.path(), 400, 7, 1_795_476_000_000, |_| {}).expect("exports");
    let mut reversed = files.clone();
    reversed.reverse();
    let mut rotated = files.clone();
    rotated.rotate_left(3);
    let tdb = TestDb::new(backend).await;
    let mut parts = Vec::new();
    for (tenant, order) in [(1, &files), (2, &reversed), (3, &rotated)] {
        let tenant = TenantId::new(tenant);
        // Tenant 3 in many small chunks: merges across transactions.
        let chunk_orders = if tenant.get() == 3 { 7 } else { 2_000 };
        for f in order.iter() {
            let mut opts = f.options.clone();
            opts.chunk_orders = chunk_orders;
            let s = import_file(&tdb.db, &cipher(), tenant, &f.path, &opts, None)
                .await
                .expect("import");
            assert_eq!(s.rejected, 0, "{backend:?} {}: {:?}", f.platform, s.errors);
        }
        parts.push(partition(&tdb.db, tenant).await);
    }
    assert_eq!(
        parts[0], parts[1],
        "{backend:?}: reversed order gave other customers"
    );
    assert_eq!(
        parts[0], parts[2],
        "{backend:?}: rotated order in small chunks gave other customers"
    );
    let (merges,): (i64,) = tdb
        .db
        .fetch_one(&sql(
            "SELECT COUNT(*) FROM customer_merges WHERE tenant_id IN (2, 3)",
        ))
        .await
        .expect("merges");
    assert!(
        merges > 0,
        "{backend:?}: the orders were chosen so that some customers merge"
    );
    let count = |t: i64| {
        let db = tdb.db.clone();
        async move {
            let (n,): (i64,) = db
                .fetch_one(&sql("SELECT COUNT(*) FROM orders WHERE tenant_id = $1").bind(t))
                .await
                .expect("count");
            n
        }
    };
    let orders = count(1).await;
    assert!(orders > 400);
    assert_eq!(orders, count(2).await);
    // Orders of one customer all point at the survivor; none at a merged customer.
    let (stale,): (i64,) = tdb
        .db
        .fetch_one(&sql("SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.merged_into IS NOT NULL"))
        .await
        .expect("stale");
    assert_eq!(stale, 0);

    // Importing everything again updates; nothing is duplicated and nobody changes.
    let mut updated = 0;
    for f in &files {
        let s = import_file(
            &tdb.db,
            &cipher(),
            TenantId::new(1),
            &f.path,
            &f.options,
            None,
        )
        .await
        .expect("re-import");
        assert_eq!(s.imported, 0);
        updated += s.updated;
    }
    assert_eq!(updated as i64, orders);
    assert_eq!(count(1).await, orders);
    assert_eq!(partition(&tdb.db, TenantId::new(1)).await, parts[0]);
}

#[test]
fn cli_import_reports_json_and_fails_when_nothing_imports() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let bin = env!("CARGO_BIN_EXE_siyu");
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env("SIYU_DATABASE_URL", &db)
            .env("SIYU_DATA_DIR", dir.path())
            .env("SIYU_SECRET_KEY", "ab".repeat(32))
            .output()
            .expect("run siyu")
    };
    let out = run(&["tenant", "create", "brand-a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("API key"));
    let file = broken_file(dir.path());
    let out = run(&[
        "import",
        "orders",
        "--preset",
        "tmall",
        "--json",
        file.to_str().expect("path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json summary");
    assert_eq!(
        (
            v["imported"].as_i64(),
            v["rejected"].as_i64(),
            v["read"].as_i64()
        ),
        (Some(3), Some(7), Some(10)),
        "{v}"
    );
    assert_eq!(v["files"][0]["errors"][0]["line"], 3);

    let bad = dir.path().join("all_bad.csv");
    std::fs::write(&bad, format!("{TMALL_HEADER}\n,,,,,,,,,,,,,\n")).expect("write");
    let out = run(&[
        "import",
        "orders",
        "--preset",
        "tmall",
        bad.to_str().expect("path"),
    ]);
    assert!(!out.status.success(), "nothing imported must be a failure");
    assert!(String::from_utf8_lossy(&out.stdout).contains("order id is missing"));
}

async fn masked_ids_continuation_rows_and_channels_sharing_order_numbers(backend: Backend) {
    let tdb = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let tmall = dir.path().join("tmall.csv");
    std::fs::write(
        &tmall,
        format!(
            "{TMALL_HEADER}\n\
             100,t**8,张三,13800138000,交易成功,2024-06-18 10:00,,300.00,0,精华,SK-101,护肤,1,200\n\
             100,,,,,,,,,面霜,SK-102,护肤,1,100\n\
             101,t**8,李四,13900139000,交易成功,2024-06-18 11:00,,99.00,0,洁面,SK-103,护肤,1,99\n\
             102,t**8,王五,***********,交易成功,2024-06-18 12:00,,99.00,120.00,洁面,SK-103,护肤,1,99\n"
        ),
    )
    .expect("write");
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &tmall,
        &ImportOptions::new(preset("tmall").expect("p")),
        None,
    )
    .await
    .expect("import");
    // Row 5: refund above the amount; its buyer id is masked and its phone unreadable anyway.
    assert_eq!((s.imported, s.rejected), (2, 1), "{:?}", s.errors);
    assert_eq!(s.errors[0].column, "退款金额");
    // A masked nickname shared by two buyers does not make them one person.
    assert_eq!(partition(&tdb.db, TenantId::new(1)).await.len(), 2);
    // The continuation row with blank order cells is the order's second line.
    let (lines,): (i64,) = tdb
        .db
        .fetch_one(&sql("SELECT COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.order_no = '100'"))
        .await
        .expect("lines");
    assert_eq!(lines, 2);

    // JD order 100 is another order; importing it leaves Tmall's lines alone.
    let jd = dir.path().join("jd.csv");
    std::fs::write(&jd, "订单号,下单帐号,联系电话,下单时间,应付金额,商品名称,订购数量\n100,jd_1,13700137000,2024-06-19 10:00,50,口红,1\n")
        .expect("write");
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &jd,
        &ImportOptions::new(preset("jd").expect("p")),
        None,
    )
    .await
    .expect("import");
    assert_eq!((s.imported, s.updated), (1, 0));
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &jd,
        &ImportOptions::new(preset("jd").expect("p")),
        None,
    )
    .await
    .expect("import");
    assert_eq!((s.imported, s.updated), (0, 1));
    let (lines,): (i64,) = tdb
        .db
        .fetch_one(&sql("SELECT COUNT(*) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.order_no = '100' AND o.channel = 'tmall'"))
        .await
        .expect("lines");
    assert_eq!(
        lines, 2,
        "{backend:?}: another channel's order with the same number wiped these lines"
    );

    // POS receipt numbers restart in every store: the store keeps them apart.
    let pos = dir.path().join("pos.csv");
    std::fs::write(&pos, "单号,门店,手机号,销售时间,实收金额\n0001,S01,13800138000,2024-06-18 10:00,10\n0001,S02,13900139000,2024-06-18 10:00,20\n")
        .expect("write");
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &pos,
        &ImportOptions::new(preset("pos").expect("p")),
        None,
    )
    .await
    .expect("import");
    assert_eq!(s.imported, 2);
}
on_each_backend!(masked_ids_continuation_rows_and_channels_sharing_order_numbers);

on_each_backend!(rows_real_exports_write_are_kept);
/// Rows that real seller exports carry and that used to be refused: Tmall's shipped status with
/// its full-width comma, a closed order paid and refunded in full whose paid column reads 0.00,
/// and the statuses JD, PDD and Douyin write (in a Tmall layout here; the words are what count).
async fn rows_real_exports_write_are_kept(backend: common::Backend) {
    let tdb = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("tmp");
    let rows = [
        (
            "T-1",
            "卖家已发货，等待买家确认",
            "199.00",
            "0.00",
            "shipped",
        ),
        ("T-2", "交易关闭", "0.00", "199.00", "closed"),
        ("T-3", "等待出库", "99.00", "0", "paid"),
        ("T-4", "(删除)完成", "99.00", "0", "completed"),
        ("T-5", "锁定", "99.00", "0", "paid"),
        ("T-6", "已发货，待签收", "99.00", "0", "shipped"),
        ("T-7", "已支付", "99.00", "0", "paid"),
        ("T-8", "备货中", "99.00", "0", "paid"),
        ("T-9", "等待付款", "99.00", "0", "pending"),
    ];
    let mut csv = format!("{TMALL_HEADER}\n");
    for (i, (no, status, paid, refund, _)) in rows.iter().enumerate() {
        csv.push_str(&format!(
            "{no},tb_{i},买家{i},1380013{i:04},\"{status}\",2024/6/18 10:01:02,,{paid},{refund},面霜,SK-102,护肤,1,199\n"
        ));
    }
    let file = dir.path().join("tmall_real.csv");
    std::fs::write(&file, csv).expect("write");
    let s = import_file(
        &tdb.db,
        &cipher(),
        TenantId::new(1),
        &file,
        &ImportOptions::new(preset("tmall").expect("preset")),
        None,
    )
    .await
    .expect("import");
    assert_eq!(
        (s.read, s.imported, s.rejected),
        (9, 9, 0),
        "{backend:?}: {s:#?}"
    );
    for (no, _, _, _, want) in rows {
        let (status,): (String,) = tdb
            .db
            .fetch_one(
                &sql("SELECT status FROM orders WHERE tenant_id = 1 AND order_no = $1").bind(no),
            )
            .await
            .expect("order");
        assert_eq!(status, want, "{backend:?}: {no}");
    }
    let (amount, refund): (i64, i64) = tdb
        .db
        .fetch_one(&sql(
            "SELECT amount, refund_amount FROM orders WHERE tenant_id = 1 AND order_no = 'T-2'",
        ))
        .await
        .expect("order");
    assert_eq!(
        (amount, refund),
        (19_900, 19_900),
        "{backend:?}: paid what was refunded"
    );
}
