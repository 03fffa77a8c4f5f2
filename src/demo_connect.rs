//! The demo's connect chapter, against the local WeCom sandbox: two stores' live codes take a
//! burst of adds through encrypted callbacks (welcomed, tagged, attributed), some customers
//! delete their guide, three kinds of customer group gain and lose members over ten weeks, a
//! group SOP post and a mass message go to guides, who are reminded and send.

use siyu::platform::TenantId;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use siyu::connect::client::{ChatMember, Content, GroupChat};
use siyu::connect::events::{CallbackEvent, DeletedBy, Envelope};
use siyu::connect::live_codes::{self, GuideSlot, NewLiveCode, TimedWelcome, Welcome};
use siyu::connect::service::{Connect, CorpSettings};
use siyu::connect::{groups, mass, sop};
use siyu::know::ingest::EventWriter;
use siyu::know::tags;
use siyu::platform::clock::now_ms;
use siyu::platform::crypto::FieldCipher;
use siyu::platform::db::{Db, sql};
use siyu_wecom_sandbox::{Sandbox, SandboxCorp};

const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;

async fn deliver(
    c: &Connect,
    wecom: &Sandbox,
    tenant: TenantId,
    env: &Envelope,
) -> anyhow::Result<()> {
    let now = now_ms();
    let (q, body) = wecom.seal_query(env, now / 1000);
    c.receive(tenant, &q, &body, now).await?;
    Ok(())
}

async fn drained(c: &Connect, tenant: TenantId) -> anyhow::Result<()> {
    c.wait_drained(tenant, Duration::from_secs(120))
        .await
        .map_err(|n| anyhow::anyhow!("{n} WeCom callbacks unfinished after 2 minutes"))
}

fn welcome(text: &str) -> Welcome {
    Welcome {
        content: Content {
            text: text.into(),
            attachments: vec![
                serde_json::json!({"msgtype": "miniprogram", "miniprogram": {
                "title": "新客礼 20 元券", "pic_media_id": "MEDIA_ID", "appid": "wxdemo", "page": "/pages/coupon/new"}}),
            ],
        },
        by_time: vec![TimedWelcome {
            from: "21:00".into(),
            to: "09:00".into(),
            content: Content {
                text: format!("{text}（顾问明早 9 点后回复您）"),
                attachments: vec![],
            },
        }],
    }
}

fn slot(userid: &str, cap: Option<i64>) -> GuideSlot {
    GuideSlot {
        userid: userid.into(),
        weekdays: vec![],
        from: None,
        to: None,
        daily_cap: cap,
    }
}

pub async fn connect_report(db: &Db, cipher: &FieldCipher, tenant: TenantId) -> anyhow::Result<()> {
    // The chapter is rerun with each demo: start it from nothing.
    for table in [
        "live_codes",
        "live_code_daily",
        "wecom_tags",
        "wecom_contacts",
        "welcome_messages",
        "wecom_groups",
        "wecom_group_members",
        "sop_posts",
        "sop_tasks",
        "mass_messages",
        "mass_tasks",
        "mass_recipients",
        "wecom_inbox",
    ] {
        db.execute(&sql(format!("DELETE FROM {table} WHERE tenant_id = $1")).bind(tenant))
            .await?;
    }
    let mut rng = StdRng::seed_from_u64(6);
    let wecom = Sandbox::start(SandboxCorp::default()).await?;
    let connect = Connect::start(
        db.clone(),
        cipher.clone(),
        EventWriter::start(db.clone(), cipher.clone(), None),
        None,
    );
    connect.allow_any_base_url();
    let sc = wecom.corp().clone();
    let now = now_ms();
    let corp = connect
        .configure(
            tenant,
            CorpSettings {
                corp_id: sc.corp_id.clone(),
                secret: sc.secret,
                token: sc.token,
                encoding_aes_key: sc.encoding_aes_key,
                base_url: Some(wecom.url().to_owned()),
            },
            now,
        )
        .await?;
    let tag = match tags::list(db, tenant)
        .await?
        .into_iter()
        .find(|t| t.name == "企微好友")
    {
        Some(t) => t,
        None => tags::create(db, tenant, "渠道", "企微好友", None, now).await?,
    };
    let jingan = live_codes::create(
        db,
        &corp.api,
        tenant,
        NewLiveCode {
            name: "静安店 门店活码".into(),
            source: "store".into(),
            source_id: Some(1),
            tag_ids: vec![tag.id],
            welcome: welcome("欢迎添加静安店美容顾问，新客礼已放入您的卡包"),
            guides: vec![slot("ba_li", Some(120)), slot("ba_wang", None)],
            backup_userid: "ba_zhao".into(),
        },
        now,
        corp.offset_min,
    )
    .await?;
    let web = live_codes::create(
        db,
        &corp.api,
        tenant,
        NewLiveCode {
            name: "天猫包裹 渠道活码".into(),
            source: "channel".into(),
            source_id: None,
            tag_ids: vec![tag.id],
            welcome: welcome("感谢在天猫旗舰店购买，专属顾问为您服务"),
            guides: vec![slot("eba_chen", None)],
            backup_userid: "ba_zhao".into(),
        },
        now,
        corp.offset_min,
    )
    .await?;

    // A burst of adds, all posted at once as WeCom would when a store event draws a crowd.
    let adds = 300;
    let mut posted = Vec::with_capacity(adds);
    let started = Instant::now();
    for i in 0..adds {
        let (guide, state) = match i % 10 {
            0..=6 => (
                if i % 2 == 0 { "ba_li" } else { "ba_wang" },
                jingan.state.as_str(),
            ),
            7 | 8 => ("eba_chen", web.state.as_str()),
            _ => ("ba_zhao", "legacy-crm-qr"),
        };
        let env = wecom.customer_adds(
            guide,
            &format!("wmDemo{i:04}"),
            Some(&format!("ounionDemo{i:04}")),
            Some(state),
        );
        let code = match &env.event {
            CallbackEvent::ContactAdded { welcome_code, .. } => welcome_code.clone(),
            _ => None,
        };
        posted.push((code, now_ms()));
        deliver(&connect, &wecom, tenant, &env).await?;
    }
    let ack = started.elapsed().as_secs_f64();
    drained(&connect, tenant).await?;
    let all = started.elapsed().as_secs_f64();
    let sent = wecom.welcomes_accepted();
    let mut lat: Vec<i64> = posted
        .iter()
        .filter_map(|(c, t)| c.as_ref().and_then(|c| sent.get(c)).map(|s| s - t))
        .collect();
    lat.sort_unstable();
    // Some customers delete their guide again.
    for i in (0..adds).step_by(17) {
        let guide = if i % 2 == 0 { "ba_li" } else { "ba_wang" };
        if i % 10 <= 6 {
            let env = Envelope {
                corp_id: sc.corp_id.clone(),
                create_time: now_ms() / 1000,
                event: CallbackEvent::ContactDeleted {
                    userid: guide.into(),
                    external_userid: format!("wmDemo{i:04}"),
                    by: DeletedBy::Customer,
                },
            };
            deliver(&connect, &wecom, tenant, &env).await?;
        }
    }

    // Three groups over ten weeks; members leave with a weekly chance that depends on the care
    // a kind of group gets (the seeds: 40% gone by week 4 without care).
    let start = now - 10 * WEEK;
    let kinds = [
        ("wrDemoGeneral", "门店福利群", "general", 0.12),
        ("wrDemoVip", "VIP 会员群", "vip", 0.04),
        ("wrDemoFlash", "秒杀快闪群", "flash", 0.25),
    ];
    let mut moves: Vec<(i64, usize, String, bool)> = Vec::new();
    for (k, (chat, _, _, hazard)) in kinds.iter().enumerate() {
        for m in 0..70 {
            let joined = start + rng.random_range(0..10 * WEEK);
            let mut left = None;
            let mut t = joined;
            while t + WEEK < now {
                if rng.random_bool(*hazard) {
                    left = Some(t + rng.random_range(0..WEEK));
                    break;
                }
                t += WEEK;
            }
            let member = format!("wm{chat}{m:03}");
            moves.push((joined, k, member.clone(), true));
            if let Some(l) = left.filter(|l| *l < now) {
                moves.push((l, k, member, false));
            }
        }
    }
    for (chat, name, _, _) in &kinds {
        wecom.put_group(GroupChat {
            chat_id: (*chat).into(),
            name: (*name).into(),
            owner: "ba_li".into(),
            create_time: (start - DAY) / 1000,
            member_list: vec![ChatMember {
                userid: "ba_li".into(),
                member_type: 1,
                join_time: (start - DAY) / 1000,
                join_scene: 0,
            }],
        });
        deliver(
            &connect,
            &wecom,
            tenant,
            &Envelope {
                corp_id: sc.corp_id.clone(),
                create_time: (start - DAY) / 1000,
                event: CallbackEvent::ChatCreated {
                    chat_id: (*chat).into(),
                },
            },
        )
        .await?;
    }
    drained(&connect, tenant).await?;
    for (_, _, kind, _) in &kinds {
        let chat = kinds
            .iter()
            .find(|k| k.2 == *kind)
            .map(|k| k.0)
            .unwrap_or_default();
        groups::set_kind(db, tenant, chat, kind)
            .await
            .context("group kind")?;
    }
    moves.sort();
    for (at, k, member, join) in &moves {
        let env = if *join {
            wecom.join_group(kinds[*k].0, &[member], at / 1000)
        } else {
            wecom.leave_group(kinds[*k].0, &[member], at / 1000)
        };
        deliver(&connect, &wecom, tenant, &env).await?;
    }
    drained(&connect, tenant).await?;

    // Group SOP for VIP groups and a mass message to the live codes' customers.
    sop::create(
        db,
        tenant,
        sop::NewPost {
            name: "周三会员日".into(),
            group_kind: Some("vip".into()),
            chat_id: None,
            due_at: now - 60_000,
            content: Content {
                text: "今晚 8 点会员日：满 300 减 50，群内专属".into(),
                attachments: vec![],
            },
            remind_after_minutes: Some(60),
            repeat_every_days: Some(7),
        },
        now,
    )
    .await?;
    sop::create(
        db,
        tenant,
        sop::NewPost {
            name: "周末新品试用".into(),
            group_kind: Some("general".into()),
            chat_id: None,
            due_at: now + 3 * DAY,
            content: Content {
                text: "周末到店试用新品，送小样".into(),
                attachments: vec![],
            },
            remind_after_minutes: None,
            repeat_every_days: None,
        },
        now,
    )
    .await?;
    let mass_id = mass::create(
        db,
        tenant,
        mass::NewMass {
            name: "新客 7 天回访".into(),
            audience: mass::Audience {
                snapshot_id: None,
                tag_ids: vec![tag.id],
            },
            content: Content {
                text: "您好，新客礼用了吗？有问题随时问我".into(),
                attachments: vec![],
            },
            purpose: Some("service".into()),
            not_before: None,
            remind_after_minutes: Some(120),
        },
        now,
    )
    .await?;
    let first = connect.tick(now).await?;
    // ba_li sends at once; the others wait for the reminder.
    for m in wecom.tasks_of("ba_li") {
        wecom.guide_sends(&m);
    }
    let later = connect.tick(now + 3 * 3_600_000).await?;

    // The report.
    let stats = live_codes::stats(db, tenant).await?;
    println!(
        "\n企微承接 / connect — WeCom through the local sandbox (encrypted callbacks, real API calls)"
    );
    println!(
        "  {adds} adds in a burst: acknowledged in {ack:.2} s, all work done in {all:.2} s; welcome message p50 {} ms, p99 {} ms ({} welcomed)",
        lat.get(lat.len() / 2).copied().unwrap_or(0),
        lat.get((lat.len() * 99 / 100).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0),
        lat.len()
    );
    println!(
        "  {:<18} {:>6} {:>8} {:>6} {:>9}  guides on duty",
        "live code 活码", "adds", "deleted", "net", "welcomed"
    );
    for s in &stats {
        println!(
            "  {:<18} {:>6} {:>8} {:>6} {:>9}  {}",
            s.name,
            s.adds,
            s.deletions,
            s.net,
            s.welcomes_sent,
            s.serving.join(", ")
        );
    }
    let (foreign,): (i64,) = db
        .fetch_one(
            &sql("SELECT COUNT(*) FROM wecom_contacts WHERE tenant_id = $1 AND code_id IS NULL")
                .bind(tenant),
        )
        .await?;
    println!("  contacts from codes Siyu did not make (foreign state): {foreign}");
    println!(
        "  retention of group members by join week 入群周留存 (weeks 1–4, cohorts with 4 weeks observed):"
    );
    for (_, name, kind, _) in &kinds {
        let t = groups::retention(db, tenant, Some(kind), now, 4, corp.offset_min).await?;
        let (mut joined, mut kept) = (0, [0i64; 4]);
        for c in t.iter().filter(|c| c.retained[3].is_some()) {
            joined += c.joined;
            for (k, v) in c.retained.iter().enumerate() {
                kept[k] += v.unwrap_or(0);
            }
        }
        let pct = |n: i64| {
            if joined > 0 {
                format!("{:>4.0}%", 100.0 * n as f64 / joined as f64)
            } else {
                "   –".into()
            }
        };
        println!(
            "    {:<14} {:<8} joined {:>3}: {} {} {} {}",
            name,
            kind,
            joined,
            pct(kept[0]),
            pct(kept[1]),
            pct(kept[2]),
            pct(kept[3])
        );
    }
    let m = mass::get(db, tenant, mass_id).await?;
    println!(
        "  SOP 群SOP: {} task(s) to group owners, {} reminder(s); mass message 群发 {:?}: {} guide task(s), recipients {:?}",
        first.sop_tasks_assigned,
        later.sop_reminders,
        m.name,
        m.tasks.len(),
        m.recipients
    );
    for t in &m.tasks {
        println!(
            "    {:<10} sent {:>3} of {:>3}  {}{}",
            t.sender,
            t.sent,
            t.recipients,
            t.status,
            if t.reminded_at.is_some() {
                " (reminded 已提醒)"
            } else {
                ""
            }
        );
    }
    // The sandbox stops with the demo: leave WeCom unconfigured rather than pointing at it.
    db.execute(&sql("DELETE FROM wecom_corps WHERE tenant_id = $1").bind(tenant))
        .await?;
    Ok(())
}
