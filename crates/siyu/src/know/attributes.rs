//! Customer attributes (city, gender, birthday month, …): free-form values set through the API,
//! which segment rules test with `attr`.

use crate::know::CustomerId;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, DbResult, sql};
use crate::platform::refusal::{Refusal, Refuse};

#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("attributes: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for AttrError {
    fn refusal(&self) -> Refusal {
        match self {
            AttrError::Invalid(_) => Refusal::Invalid,
            AttrError::Db(_) => Refusal::Internal,
        }
    }
}

/// Sets customer attributes (name → JSON scalar; `null` removes one).
pub async fn set_attributes(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
    attrs: &serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> Result<(), AttrError> {
    let mut rows = Vec::new();
    let mut removed = Vec::new();
    for (name, v) in attrs {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
            return Err(AttrError::Invalid(format!(
                "{name:?}: a name must be 1–40 characters"
            )));
        }
        if v.is_null() {
            removed.push(name);
            continue;
        }
        let text = super::rule::attr_text(v)
            .map_err(|reason| AttrError::Invalid(format!("{name}: {reason}")))?;
        if text.chars().count() > 200 {
            return Err(AttrError::Invalid(format!(
                "{name}: longer than 200 characters"
            )));
        }
        let num = text.parse::<i64>().ok();
        rows.push((name, text, num));
    }
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    for (name, text, num) in rows {
        tx.execute(
            &sql(
                "INSERT INTO customer_attributes (tenant_id, customer_id, name, value, num, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, customer_id, name) DO UPDATE SET value = excluded.value, num = excluded.num, updated_at = excluded.updated_at",
            )
            .bind(tenant)
            .bind(customer)
            .bind(name)
            .bind(text)
            .bind(num)
            .bind(now),
        )
        .await?;
    }
    for name in removed {
        tx.execute(
            &sql("DELETE FROM customer_attributes WHERE tenant_id = $1 AND customer_id = $2 AND name = $3")
                .bind(tenant)
                .bind(customer)
                .bind(name),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A customer's attributes.
pub async fn attributes_of(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
) -> DbResult<Vec<(String, String)>> {
    db.fetch_all(
        &sql("SELECT name, value FROM customer_attributes WHERE tenant_id = $1 AND customer_id = $2 ORDER BY name")
            .bind(tenant)
            .bind(customer),
    )
    .await
}
