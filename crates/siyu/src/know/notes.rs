//! Notes on a customer (备注): what staff learned that no export says ("prefers green tea",
//! "call after 6 pm"), who wrote it and when. They follow the person through OneID merges.

use serde::Serialize;

use super::CustomerId;
use crate::platform::TenantId;
use crate::platform::db::{Db, DbError, sql};
use crate::platform::refusal::{Refusal, Refuse};

/// The longest note, in characters.
pub const MOST_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("body: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for NoteError {
    fn refusal(&self) -> Refusal {
        match self {
            NoteError::Invalid(_) => Refusal::Invalid,
            NoteError::Db(_) => Refusal::Internal,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: i64,
    pub body: String,
    pub created_by: String,
    pub created_at: i64,
}

/// Keeps a note on the customer; `by` is who wrote it (`console:<user>`, `api:<key>`).
pub async fn add(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
    body: &str,
    by: &str,
    now: i64,
) -> Result<Note, NoteError> {
    let body = body.trim();
    let chars = body.chars().count();
    if chars == 0 {
        return Err(NoteError::Invalid("empty".into()));
    }
    if chars > MOST_CHARS {
        return Err(NoteError::Invalid(format!(
            "{chars} characters, at most {MOST_CHARS}"
        )));
    }
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("customer_note", 1).await?;
    tx.execute(
        &sql("INSERT INTO customer_notes (id, tenant_id, customer_id, body, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(tenant)
            .bind(customer)
            .bind(body)
            .bind(by)
            .bind(now),
    )
    .await?;
    tx.commit().await?;
    Ok(Note {
        id,
        body: body.to_owned(),
        created_by: by.to_owned(),
        created_at: now,
    })
}

/// The customer's notes, newest first.
pub async fn of(db: &Db, tenant: TenantId, customer: CustomerId) -> Result<Vec<Note>, DbError> {
    db.fetch_all(
        &sql(
            "SELECT id, body, created_by, created_at FROM customer_notes \
             WHERE tenant_id = $1 AND customer_id = $2 ORDER BY created_at DESC, id DESC LIMIT 100",
        )
        .bind(tenant)
        .bind(customer),
    )
    .await
}
