//! Tags (标签) in groups: manual tags set by API, console or an uploaded list, and rule tags whose
//! members are whoever a segment rule selects, kept current by the audience index. Every change
//! of membership is written to `tag_history` with its source.

use crate::know::CustomerId;
use crate::platform::TenantId;
use crate::platform::refusal::{Refusal, Refuse};
use roaring::RoaringBitmap;
use serde::Serialize;

use super::customers::surviving_ids;
use super::identity::Identity;
use super::phone::Phone;
use super::rule::{Rule, RuleError};
use crate::platform::crypto::FieldCipher;
use crate::platform::db::{Db, DbError, DbResult, MAX_BINDS, Tx, Value, sql, values_placeholders};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Tag {
    pub id: i64,
    pub group_name: String,
    pub name: String,
    /// A rule tag's rule, as JSON text; `None` for a manual tag.
    #[serde(skip)]
    pub rule: Option<String>,
    pub created_at: i64,
}

impl Tag {
    pub fn rule_json(&self) -> Option<serde_json::Value> {
        self.rule
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("a tag {group}/{name} exists already")]
    Exists { group: String, name: String },
    #[error("tag {0} not found")]
    NotFound(i64),
    #[error("rule: {0}")]
    Rule(#[from] RuleError),
    /// A list stopped part-way: the chunks in `done` are stored and stand.
    #[error("{source} ({} customers were changed before it)", done.len())]
    Stopped {
        done: Vec<CustomerId>,
        #[source]
        source: Box<TagError>,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for TagError {
    fn refusal(&self) -> Refusal {
        match self {
            TagError::NotFound(_) => Refusal::NotFound("not_found"),
            TagError::Exists { .. } => Refusal::Conflict("exists"),
            TagError::Rule(r) => r.refusal(),
            TagError::Stopped { source, .. } => source.refusal(),
            TagError::Invalid { .. } => Refusal::Invalid,
            TagError::Db(_) => Refusal::Internal,
        }
    }
}

fn check_name(field: &'static str, s: &str, allow_empty: bool) -> Result<String, TagError> {
    let s = s.trim();
    if (!allow_empty && s.is_empty()) || s.chars().count() > 40 || s.chars().any(char::is_control) {
        return Err(TagError::Invalid {
            field,
            reason: "must be 1–40 characters without control characters".into(),
        });
    }
    Ok(s.to_owned())
}

pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<Tag>> {
    db.fetch_all(
        &sql("SELECT id, group_name, name, rule, created_at FROM tags WHERE tenant_id = $1 ORDER BY group_name, name")
            .bind(tenant),
    )
    .await
}

pub async fn get(db: &Db, tenant: TenantId, id: i64) -> Result<Tag, TagError> {
    db.fetch_optional(
        &sql("SELECT id, group_name, name, rule, created_at FROM tags WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?
    .ok_or(TagError::NotFound(id))
}

/// Creates a tag; with a rule, a rule tag. A rule tag's rule may name manual tags only, so
/// that one pass over the rule tags settles them all.
pub async fn create(
    db: &Db,
    tenant: TenantId,
    group: &str,
    name: &str,
    rule: Option<&Rule>,
    now: i64,
) -> Result<Tag, TagError> {
    let group = check_name("group", group, true)?;
    let name = check_name("name", name, false)?;
    if let Some(rule) = rule {
        rule.check()?;
        for id in rule.tag_ids() {
            let t = get(db, tenant, id).await.map_err(|_| TagError::Invalid {
                field: "rule",
                reason: format!("tag {id} does not exist"),
            })?;
            if t.rule.is_some() {
                return Err(TagError::Invalid {
                    field: "rule",
                    reason: format!("tag {id} is a rule tag; a rule tag may name manual tags only"),
                });
            }
        }
    }
    let exists: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT id FROM tags WHERE tenant_id = $1 AND group_name = $2 AND name = $3")
                .bind(tenant)
                .bind(group.as_str())
                .bind(name.as_str()),
        )
        .await?;
    if exists.is_some() {
        return Err(TagError::Exists { group, name });
    }
    let rule_text = rule.map(|r| r.to_json().to_string());
    let mut tx = db.begin().await?;
    let id = tx.reserve_ids("tag", 1).await?;
    let tag: Tag = tx
        .fetch_one(
            &sql("INSERT INTO tags (id, tenant_id, group_name, name, rule, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                  RETURNING id, group_name, name, rule, created_at")
                .bind(id)
                .bind(tenant)
                .bind(group)
                .bind(name)
                .bind(rule_text)
                .bind(now),
        )
        .await?;
    tx.commit().await?;
    Ok(tag)
}

/// Deletes a tag and its memberships (the history stays). A manual tag named by a rule tag's
/// rule cannot be deleted.
pub async fn delete(db: &Db, tenant: TenantId, id: i64) -> Result<Vec<CustomerId>, TagError> {
    get(db, tenant, id).await?;
    for (rid, rule) in rule_tags(db, tenant).await? {
        if rule.tag_ids().contains(&id) {
            return Err(TagError::Invalid {
                field: "id",
                reason: format!("rule tag {rid} uses tag {id}; change or delete it first"),
            });
        }
    }
    for s in super::segments::list(db, tenant).await? {
        if s.rule().is_ok_and(|r| r.tag_ids().contains(&id)) {
            return Err(TagError::Invalid {
                field: "id",
                reason: format!(
                    "segment {} ({}) uses tag {id}; change or delete it first",
                    s.id, s.name
                ),
            });
        }
    }
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    let members: Vec<(CustomerId,)> = tx
        .fetch_all(
            &sql("SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2")
                .bind(tenant)
                .bind(id),
        )
        .await?;
    tx.execute(
        &sql("DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    tx.execute(
        &sql("DELETE FROM tags WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id),
    )
    .await?;
    tx.commit().await?;
    Ok(members.into_iter().map(|r| r.0).collect())
}

/// Every rule tag of the tenant with its parsed rule.
pub async fn rule_tags(db: &Db, tenant: TenantId) -> DbResult<Vec<(i64, Rule)>> {
    let rows: Vec<(i64, String)> = db
        .fetch_all(
            &sql("SELECT id, rule FROM tags WHERE tenant_id = $1 AND rule IS NOT NULL ORDER BY id")
                .bind(tenant),
        )
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, r)| {
            let v: serde_json::Value = serde_json::from_str(&r).ok()?;
            match Rule::from_json(&v) {
                Ok(rule) => Some((id, rule)),
                Err(e) => {
                    tracing::warn!(tag = id, error = %e, "rule tag has a rule that no longer checks; skipped");
                    None
                }
            }
        })
        .collect())
}

async fn write_history(
    tx: &mut Tx,
    tenant: TenantId,
    tag: i64,
    customers: &[CustomerId],
    action: &str,
    source: &str,
    now: i64,
) -> DbResult<()> {
    for batch in customers.chunks(MAX_BINDS / 6) {
        let mut q = sql(format!(
            "INSERT INTO tag_history (tenant_id, customer_id, tag_id, action, source, at) VALUES {}",
            values_placeholders(batch.len(), 6, 1)
        ));
        for c in batch {
            q.push_arg(tenant);
            q.push_arg(*c);
            q.push_arg(tag);
            q.push_arg(action);
            q.push_arg(source);
            q.push_arg(now);
        }
        tx.execute(&q).await?;
    }
    Ok(())
}

async fn add_in(
    tx: &mut Tx,
    tenant: TenantId,
    tag: i64,
    customers: &[CustomerId],
    source: &str,
    now: i64,
) -> DbResult<Vec<CustomerId>> {
    let have: Vec<(CustomerId,)> = tx
        .fetch_in(
            "SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 AND customer_id",
            &[tenant.into(), tag.into()],
            customers.iter().map(|c| Value::from(*c)).collect(),
        )
        .await?;
    let have: std::collections::HashSet<CustomerId> = have.into_iter().map(|r| r.0).collect();
    let mut new: Vec<CustomerId> = customers
        .iter()
        .copied()
        .filter(|c| !have.contains(c))
        .collect();
    new.sort_unstable();
    new.dedup();
    for batch in new.chunks(MAX_BINDS / 5) {
        let mut q = sql(format!(
            "INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, tagged_at) VALUES {}",
            values_placeholders(batch.len(), 5, 1)
        ));
        for c in batch {
            q.push_arg(tenant);
            q.push_arg(*c);
            q.push_arg(tag);
            q.push_arg(source);
            q.push_arg(now);
        }
        tx.execute(&q).await?;
    }
    write_history(tx, tenant, tag, &new, "add", source, now).await?;
    Ok(new)
}

async fn remove_in(
    tx: &mut Tx,
    tenant: TenantId,
    tag: i64,
    customers: &[CustomerId],
    source: &str,
    now: i64,
) -> DbResult<Vec<CustomerId>> {
    let have: Vec<(CustomerId,)> = tx
        .fetch_in(
            "SELECT customer_id FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 AND customer_id",
            &[tenant.into(), tag.into()],
            customers.iter().map(|c| Value::from(*c)).collect(),
        )
        .await?;
    let gone: Vec<CustomerId> = have.into_iter().map(|r| r.0).collect();
    tx.execute_in(
        "DELETE FROM customer_tags WHERE tenant_id = $1 AND tag_id = $2 AND customer_id",
        &[tenant.into(), tag.into()],
        gone.iter().map(|c| Value::from(*c)).collect(),
    )
    .await?;
    write_history(tx, tenant, tag, &gone, "remove", source, now).await?;
    Ok(gone)
}

/// Tags customers by hand; returns those newly tagged. `source` says who: `api:<key name>`,
/// `console:<user>`, `upload:<user>`.
pub async fn tag_customers(
    db: &Db,
    tenant: TenantId,
    tag: &Tag,
    customers: &[CustomerId],
    source: &str,
    now: i64,
) -> Result<Vec<CustomerId>, TagError> {
    set_by_hand(db, tenant, tag, customers, source, now, HandChange::Add).await
}

/// Removes a manual tag from customers; returns those it was removed from.
pub async fn untag_customers(
    db: &Db,
    tenant: TenantId,
    tag: &Tag,
    customers: &[CustomerId],
    source: &str,
    now: i64,
) -> Result<Vec<CustomerId>, TagError> {
    set_by_hand(db, tenant, tag, customers, source, now, HandChange::Remove).await
}

#[derive(Clone, Copy)]
enum HandChange {
    Add,
    Remove,
}

/// A manual tag added to or removed from customers, a chunk at a time: a crash leaves the
/// chunks before it done, and doing the list again does only what is missing. An error after
/// a chunk says what was stored ([`TagError::Stopped`]).
async fn set_by_hand(
    db: &Db,
    tenant: TenantId,
    tag: &Tag,
    customers: &[CustomerId],
    source: &str,
    now: i64,
    change: HandChange,
) -> Result<Vec<CustomerId>, TagError> {
    if tag.rule.is_some() {
        return Err(TagError::Invalid {
            field: "tag",
            reason: "a rule tag's members follow its rule; they cannot be set by hand".into(),
        });
    }
    let mut changed = Vec::new();
    for chunk in customers.chunks(WRITE_CHUNK) {
        let stored = async {
            let mut tx = db.begin().await?;
            tx.lock_tenant(tenant).await?;
            let done = match change {
                HandChange::Add => add_in(&mut tx, tenant, tag.id, chunk, source, now).await?,
                HandChange::Remove => {
                    remove_in(&mut tx, tenant, tag.id, chunk, source, now).await?
                }
            };
            tx.commit().await?;
            Ok::<_, DbError>(done)
        };
        match stored.await {
            Ok(done) => changed.extend(done),
            Err(e) if changed.is_empty() => return Err(e.into()),
            Err(e) => {
                return Err(TagError::Stopped {
                    done: changed,
                    source: Box::new(e.into()),
                });
            }
        }
    }
    Ok(changed)
}

/// Stores a rule tag's change of members (computed by the audience index).
pub async fn apply_rule_tag(
    db: &Db,
    tenant: TenantId,
    tag: i64,
    add: &RoaringBitmap,
    remove: &RoaringBitmap,
    now: i64,
) -> DbResult<()> {
    let add: Vec<CustomerId> = add.iter().map(|c| CustomerId::new(c.into())).collect();
    let remove: Vec<CustomerId> = remove.iter().map(|c| CustomerId::new(c.into())).collect();
    let mut tx = db.begin().await?;
    tx.lock_tenant(tenant).await?;
    // Deleted meanwhile (under the same lock): nothing to store.
    let exists: Option<(i64,)> = tx
        .fetch_optional(
            &sql("SELECT id FROM tags WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(tag),
        )
        .await?;
    if exists.is_none() {
        return tx.commit().await;
    }
    add_in(&mut tx, tenant, tag, &add, "rule", now).await?;
    remove_in(&mut tx, tenant, tag, &remove, "rule", now).await?;
    tx.commit().await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TagChange {
    pub tag_id: i64,
    pub group_name: String,
    pub name: String,
    pub action: String,
    pub source: String,
    pub at: i64,
}

/// Who or what tagged and untagged a customer, newest first.
pub async fn history_of(
    db: &Db,
    tenant: TenantId,
    customer: CustomerId,
) -> DbResult<Vec<TagChange>> {
    db.fetch_all(
        &sql(
            "SELECT h.tag_id, COALESCE(t.group_name, '') AS group_name, COALESCE(t.name, '(deleted)') AS name, \
             h.action, h.source, h.at FROM tag_history h LEFT JOIN tags t ON t.id = h.tag_id \
             WHERE h.tenant_id = $1 AND h.customer_id = $2 ORDER BY h.at DESC, h.id DESC LIMIT 200",
        )
        .bind(tenant)
        .bind(customer),
    )
    .await
}

/// The tags a customer has now.
pub async fn tags_of(db: &Db, tenant: TenantId, customer: CustomerId) -> DbResult<Vec<Tag>> {
    db.fetch_all(
        &sql(
            "SELECT t.id, t.group_name, t.name, t.rule, t.created_at FROM customer_tags ct \
             JOIN tags t ON t.id = ct.tag_id WHERE ct.tenant_id = $1 AND ct.customer_id = $2 \
             ORDER BY t.group_name, t.name",
        )
        .bind(tenant)
        .bind(customer),
    )
    .await
}

/// One line of an uploaded list that named no customer.
#[derive(Debug, Clone, Serialize)]
pub struct LineError {
    pub line: usize,
    pub value: String,
    pub reason: String,
}

/// Lines (or ids) one list may name. A larger list is refused whole, before anything is
/// looked up, so one request cannot hold the store for long.
pub const MOST_LISTED: usize = 100_000;

/// Customers written per transaction when a list is tagged or untagged: the writer is held for
/// one chunk at a time, and other tenants' writes go between chunks.
const WRITE_CHUNK: usize = 5_000;

/// What one line of a list names.
enum Named {
    Id(CustomerId),
    /// An identity's lookup key (`identities.ikey`).
    Key(String),
}

/// Refuses a list of more than [`MOST_LISTED`] items, naming the field.
pub fn check_list_length(field: &'static str, n: usize) -> Result<(), TagError> {
    if n > MOST_LISTED {
        return Err(TagError::Invalid {
            field,
            reason: format!("at most {MOST_LISTED} in one request (got {n}); split the list"),
        });
    }
    Ok(())
}

/// Finds the customers an uploaded list names, one per line: a phone number, a customer id
/// (`#123` or a plain number that is not a phone), or `kind:value`. Blank lines are skipped.
/// Every line is read first and then looked up in batches, a few hundred to a statement.
pub async fn resolve_list(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    text: &str,
) -> Result<(Vec<CustomerId>, Vec<LineError>), TagError> {
    check_list_length("list", text.lines().count())?;
    let lookup = cipher.lookup(tenant);
    let mut named = Vec::new();
    let mut errors = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        let err = |reason: String| LineError {
            line: n + 1,
            value: line.to_owned(),
            reason,
        };
        let what = if let Some(id) = line.strip_prefix('#') {
            match id.trim().parse::<CustomerId>() {
                Ok(id) => Named::Id(id),
                Err(_) => {
                    errors.push(err("not a customer id".into()));
                    continue;
                }
            }
        } else if line.contains(':') {
            match Identity::parse_shorthand(line) {
                Ok(i) => Named::Key(i.lookup_key(&lookup)),
                Err(e) => {
                    errors.push(err(e.to_string()));
                    continue;
                }
            }
        } else {
            match Phone::parse(line) {
                Ok(p) => Named::Key(Identity::Phone(p).lookup_key(&lookup)),
                Err(pe) => match line.parse::<CustomerId>() {
                    Ok(id) => Named::Id(id),
                    Err(_) => {
                        errors.push(err(pe.to_string()));
                        continue;
                    }
                },
            }
        };
        named.push((n + 1, line.to_owned(), what));
    }
    let ids: Vec<CustomerId> = named
        .iter()
        .filter_map(|(_, _, w)| match w {
            Named::Id(id) => Some(*id),
            Named::Key(_) => None,
        })
        .collect();
    let survivors = surviving_ids(db, tenant, &ids).await?;
    let keys: Vec<Value> = named
        .iter()
        .filter_map(|(_, _, w)| match w {
            Named::Key(k) => Some(Value::from(k.clone())),
            Named::Id(_) => None,
        })
        .collect();
    let holders: std::collections::HashMap<String, CustomerId> = db
        .fetch_in::<(String, CustomerId)>(
            "SELECT ikey, customer_id FROM identities WHERE tenant_id = $1 AND ikey",
            &[tenant.into()],
            keys,
        )
        .await?
        .into_iter()
        .collect();
    let mut found = Vec::with_capacity(named.len());
    for (line, value, what) in named {
        let id = match &what {
            Named::Id(id) => survivors.get(id).copied(),
            Named::Key(k) => holders.get(k).copied(),
        };
        match id {
            Some(id) => found.push(id),
            None => errors.push(LineError {
                line,
                value,
                reason: "no such customer".into(),
            }),
        }
    }
    errors.sort_by_key(|e| e.line);
    found.sort_unstable();
    found.dedup();
    Ok((found, errors))
}
