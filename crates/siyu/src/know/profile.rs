//! Purchase figures, RFM and lifecycle stage per customer (`customer_stats`), and the tenant's
//! layering settings. Recomputed for the customers whose orders change, and for everyone once a
//! day (windows move with time) or when the settings change.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::collections::HashMap;

use super::orders::PURCHASE_STATUSES;
use super::rfm::{LayeringSettings, Purchase, PurchaseStats, RfmModel};
use crate::platform::db::{Db, DbResult, MAX_BINDS, Tx, Value, sql, values_placeholders};

/// The tenant's settings, and the model last fitted (absent before the first recompute).
pub async fn settings(db: &Db, tenant: TenantId) -> DbResult<(LayeringSettings, Option<RfmModel>)> {
    let row: Option<(String, Option<String>)> = db
        .fetch_optional(
            &sql("SELECT settings, model FROM layering_settings WHERE tenant_id = $1").bind(tenant),
        )
        .await?;
    Ok(match row {
        Some((s, m)) => (
            serde_json::from_str(&s).unwrap_or_default(),
            m.and_then(|m| serde_json::from_str(&m).ok()),
        ),
        None => (LayeringSettings::default(), None),
    })
}

/// Saves settings (checked by the caller) and recomputes everyone.
pub async fn save_settings(
    db: &Db,
    tenant: TenantId,
    s: &LayeringSettings,
    now: i64,
) -> DbResult<RfmModel> {
    let text = serde_json::to_string(s).unwrap_or_default();
    db.execute(
        &sql(
            "INSERT INTO layering_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(text)
        .bind(now),
    )
    .await?;
    recompute_all(db, tenant, now).await
}

async fn purchases(
    tx: &mut Tx,
    tenant: TenantId,
    ids: Option<&[CustomerId]>,
) -> DbResult<HashMap<i64, Vec<Purchase>>> {
    let head = format!(
        "SELECT customer_id, ordered_at, amount - refund_amount FROM orders \
         WHERE tenant_id = $1 AND status IN {PURCHASE_STATUSES}"
    );
    let rows: Vec<(i64, i64, i64)> = match ids {
        None => tx.fetch_all(&sql(head).bind(tenant)).await?,
        Some(ids) => {
            tx.fetch_in(
                &format!("{head} AND customer_id"),
                &[tenant.into()],
                ids.iter().map(|i| Value::from(*i)).collect(),
            )
            .await?
        }
    };
    let mut by: HashMap<i64, Vec<Purchase>> = HashMap::new();
    for (c, at, amount) in rows {
        by.entry(c).or_default().push(Purchase { at, amount });
    }
    Ok(by)
}

const STATS_COLS: usize = 15;

async fn write_stats(
    tx: &mut Tx,
    tenant: TenantId,
    rows: &[(i64, PurchaseStats)],
    model: &RfmModel,
    settings: &LayeringSettings,
    now: i64,
) -> DbResult<()> {
    for batch in rows.chunks(MAX_BINDS / STATS_COLS) {
        let mut q = sql(format!(
            "INSERT INTO customer_stats (tenant_id, customer_id, first_order_at, repurchase_at, last_order_at, \
             order_count, spend, window_orders, window_spend, r_score, f_score, m_score, rfm_class, stage, computed_at) \
             VALUES {}",
            values_placeholders(batch.len(), STATS_COLS, 1)
        ));
        for (c, p) in batch {
            let s = model.score(p, now);
            q.push_arg(tenant);
            q.push_arg(*c);
            q.push_arg(p.first_order_at);
            q.push_arg(p.repurchase_at);
            q.push_arg(p.last_order_at);
            q.push_arg(p.order_count);
            q.push_arg(p.spend);
            q.push_arg(p.window_orders);
            q.push_arg(p.window_spend);
            q.push_arg(s.r);
            q.push_arg(s.f);
            q.push_arg(s.m);
            q.push_arg(s.class.as_str());
            q.push_arg(p.stage(now, settings).as_str());
            q.push_arg(now);
        }
        tx.execute(&q).await?;
    }
    Ok(())
}

/// Recomputes every customer's figures, refits the RFM model and stores both.
pub async fn recompute_all(db: &Db, tenant: TenantId, now: i64) -> DbResult<RfmModel> {
    let (settings, _) = settings(db, tenant).await?;
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let by = purchases(&mut tx, tenant, None).await?;
    let mut rows: Vec<(i64, PurchaseStats)> = by
        .iter()
        .filter_map(|(c, ps)| Some((*c, PurchaseStats::of(ps, now, settings.window_days)?)))
        .collect();
    rows.sort_unstable_by_key(|r| r.0);
    let stats: Vec<PurchaseStats> = rows.iter().map(|r| r.1).collect();
    let model = RfmModel::fit(&stats, &settings, now);
    tx.execute(&sql("DELETE FROM customer_stats WHERE tenant_id = $1").bind(tenant))
        .await?;
    write_stats(&mut tx, tenant, &rows, &model, &settings, now).await?;
    let model_text = serde_json::to_string(&model).unwrap_or_default();
    tx.execute(
        &sql(
            "INSERT INTO layering_settings (tenant_id, settings, model, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE SET model = excluded.model, updated_at = excluded.updated_at",
        )
        .bind(tenant)
        .bind(serde_json::to_string(&settings).unwrap_or_default())
        .bind(model_text)
        .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(model)
}

/// Recomputes some customers' figures with the model in force (fitting one first if there is
/// none yet).
pub async fn recompute_customers(
    db: &Db,
    tenant: TenantId,
    ids: &[CustomerId],
    now: i64,
) -> DbResult<()> {
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    // Read under the lock: a settings change (which recomputes everyone) cannot slip between.
    let row: Option<(String, Option<String>)> = tx
        .fetch_optional(
            &sql("SELECT settings, model FROM layering_settings WHERE tenant_id = $1").bind(tenant),
        )
        .await?;
    let settings: LayeringSettings = row
        .as_ref()
        .and_then(|r| serde_json::from_str(&r.0).ok())
        .unwrap_or_default();
    let model: Option<RfmModel> = row
        .and_then(|r| r.1)
        .and_then(|m| serde_json::from_str(&m).ok());
    let Some(model) = model else {
        tx.commit().await?;
        recompute_all(db, tenant, now).await?;
        return Ok(());
    };
    let by = purchases(&mut tx, tenant, Some(ids)).await?;
    let mut rows: Vec<(i64, PurchaseStats)> = by
        .iter()
        .filter_map(|(c, ps)| Some((*c, PurchaseStats::of(ps, now, settings.window_days)?)))
        .collect();
    rows.sort_unstable_by_key(|r| r.0);
    tx.execute_in(
        "DELETE FROM customer_stats WHERE tenant_id = $1 AND customer_id",
        &[tenant.into()],
        ids.iter().map(|i| Value::from(*i)).collect(),
    )
    .await?;
    write_stats(&mut tx, tenant, &rows, &model, &settings, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Customers per RFM class and per stage, from the store.
pub async fn distribution(db: &Db, tenant: TenantId) -> DbResult<Vec<(String, String, i64)>> {
    db.fetch_all(
        &sql(
            "SELECT rfm_class, stage, count(*) FROM customer_stats WHERE tenant_id = $1 GROUP BY rfm_class, stage",
        )
        .bind(tenant),
    )
    .await
}
