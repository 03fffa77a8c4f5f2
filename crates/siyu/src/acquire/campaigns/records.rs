//! Creating a campaign (validating its settings and variants, then storing it as a draft) and
//! reading campaigns back.

use crate::platform::Fen;
use crate::platform::TenantId;
use std::collections::HashSet;

use super::*;
use crate::acquire::links;
use crate::know::phone::Phone;
use crate::know::segments;
use crate::platform::db::{Db, sql};

/// Validates and stores a campaign; returns it with the content report of each variant.
pub async fn create(
    db: &Db,
    tenant: TenantId,
    c: &NewCampaign,
    link_len: usize,
    now: i64,
) -> Result<(Campaign, Vec<ContentReport>), CampaignError> {
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1–100 characters"));
    }
    segments::snapshot_members(db, tenant, c.snapshot_id).await?;
    if !(1..=5).contains(&c.variants.len()) {
        return Err(invalid("variants", "a campaign has 1–5 variants"));
    }
    if !(0..=50).contains(&c.holdout_percent) {
        return Err(invalid("holdout_percent", "must be between 0 and 50"));
    }
    if let Some(t) = &c.target_url {
        links::check_target(t).map_err(|e| invalid("target_url", e.to_string()))?;
    }
    let mut names = HashSet::new();
    let mut reports = Vec::new();
    for (i, v) in c.variants.iter().enumerate() {
        let field = format!("variants[{i}]");
        let n = v.name.trim();
        if n.is_empty() || n.len() > 32 || n == CONTROL {
            return Err(invalid(
                format!("{field}.name"),
                "must be 1–32 characters and not \"control\"",
            ));
        }
        if !names.insert(n.to_string()) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{n:?} is used twice"),
            ));
        }
        if v.weight == 0 || v.weight > 100 {
            return Err(invalid(format!("{field}.weight"), "must be 1–100"));
        }
        reports.push(check_content(
            &format!("{field}.content"),
            n,
            &v.content,
            c.target_url.as_deref(),
            &c.forbidden_words,
            link_len,
        )?);
    }
    let mut exclude = Vec::new();
    for (i, p) in c.exclude_phones.iter().enumerate() {
        let phone =
            Phone::parse(p).map_err(|e| invalid(format!("exclude_phones[{i}]"), e.to_string()))?;
        exclude.push(phone.as_str().to_string());
    }
    let cost = c.cost_per_part.unwrap_or(Fen::new(5));
    if !(Fen::ZERO..=Fen::new(1_000)).contains(&cost) {
        return Err(invalid("cost_per_part", "must be 0–1000 fen"));
    }
    let window = c.window_days.unwrap_or(7);
    if !(1..=90).contains(&window) {
        return Err(invalid("window_days", "must be 1–90"));
    }
    let seed = c
        .seed
        .clone()
        .unwrap_or_else(|| crate::platform::crypto::random_token(8));
    let variants: Vec<VariantSpec> = c
        .variants
        .iter()
        .map(|v| VariantSpec {
            name: v.name.trim().to_string(),
            content: v.content.trim().to_string(),
            weight: v.weight,
        })
        .collect();
    let variants_json = serde_json::to_string(&variants).unwrap_or_default();
    let exclude_json = serde_json::to_string(&exclude).unwrap_or_default();
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("campaign", 1).await?;
    tx.execute(
        &sql("INSERT INTO campaigns (id, tenant_id, name, snapshot_id, variants, holdout_percent, seed, target_url, \
              template_code, exclude_list, cost_per_part, window_days, status, scheduled_at, created_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'draft', $13, $14)")
            .bind(id)
            .bind(tenant)
            .bind(name)
            .bind(c.snapshot_id)
            .bind(variants_json)
            .bind(c.holdout_percent)
            .bind(seed)
            .bind(c.target_url.clone())
            .bind(c.template_code.clone())
            .bind(exclude_json)
            .bind(cost)
            .bind(window)
            .bind(c.scheduled_at.unwrap_or(now))
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok((get(db, tenant, id).await?, reports))
}

#[derive(sqlx::FromRow)]
pub(super) struct CampaignRow {
    pub(super) id: i64,
    pub(super) tenant_id: TenantId,
    pub(super) name: String,
    pub(super) snapshot_id: i64,
    pub(super) variants: String,
    pub(super) holdout_percent: i64,
    pub(super) seed: String,
    pub(super) target_url: Option<String>,
    pub(super) template_code: Option<String>,
    pub(super) cost_per_part: Fen,
    pub(super) window_days: i64,
    pub(super) status: CampaignStatus,
    pub(super) scheduled_at: i64,
    pub(super) launched_at: Option<i64>,
    pub(super) created_at: i64,
    #[sqlx(flatten)]
    pub(super) approval: super::approval::Approval,
}

pub(super) const COLUMNS: &str = "id, tenant_id, name, snapshot_id, variants, holdout_percent, seed, target_url, template_code, \
                       cost_per_part, window_days, status, scheduled_at, launched_at, created_at, \
                       approval_asked_by AS asked_by, approval_asked_at AS asked_at, approved_by, approved_at";

impl From<CampaignRow> for Campaign {
    fn from(r: CampaignRow) -> Self {
        Campaign {
            id: r.id,
            tenant_id: r.tenant_id,
            name: r.name,
            snapshot_id: r.snapshot_id,
            variants: serde_json::from_str(&r.variants).unwrap_or_default(),
            holdout_percent: r.holdout_percent,
            seed: r.seed,
            target_url: r.target_url,
            template_code: r.template_code,
            cost_per_part: r.cost_per_part,
            window_days: r.window_days,
            status: r.status,
            scheduled_at: r.scheduled_at,
            launched_at: r.launched_at,
            created_at: r.created_at,
            approval: r.approval,
        }
    }
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<Campaign, CampaignError> {
    let row: Option<CampaignRow> = db
        .fetch_optional(
            &sql(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    row.map(Campaign::from).ok_or(CampaignError::NotFound(id))
}

pub async fn list(db: &Db, tenant: TenantId) -> Result<Vec<Campaign>, CampaignError> {
    let rows: Vec<CampaignRow> = db
        .fetch_all(
            &sql(format!(
                "SELECT {COLUMNS} FROM campaigns WHERE tenant_id = $1 ORDER BY id DESC LIMIT 200"
            ))
            .bind(tenant),
        )
        .await?;
    Ok(rows.into_iter().map(Campaign::from).collect())
}
