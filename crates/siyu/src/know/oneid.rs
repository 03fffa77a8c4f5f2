//! Identity resolution (OneID): identities seen together on one record belong to one customer.
//!
//! Records are resolved a chunk at a time inside the caller's write transaction: the chunk's
//! identity keys are looked up, a union-find joins keys that share a record and keys that already
//! belong to a customer, each component becomes one customer (new, existing, or the oldest of
//! several, which absorbs the others). Since every component is exactly a connected component of
//! the identity graph seen so far, the final customers do not depend on the order records arrive.

use crate::platform::TenantId;
// A fast seeded hash: these maps are rebuilt for every chunk on the writer's path, where
// SipHash showed in the profile (the change measured small, docs/BENCHMARKS.md).
use foldhash::HashMap;

use super::identity::KeyedIdentity;
use crate::platform::db::{
    Backend, DbResult, MAX_BINDS, Sql, Tx, Value, list_placeholders, sql, values_placeholders,
};
use crate::platform::rows::Arg;

/// Union-find with path halving and union by smaller index (so roots are deterministic).
#[derive(Debug, Default)]
pub struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }
    pub fn add(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
    }
    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    pub fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}

/// One record's identities, and a display name for a customer it may create.
#[derive(Debug, Clone, Default)]
pub struct IdentityRecord {
    pub identities: Vec<KeyedIdentity>,
    pub name: Option<String>,
}

/// What resolving a chunk did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResolveStats {
    pub customers_created: u64,
    pub customers_merged: u64,
    pub identities_added: u64,
    /// Customers whose identities changed: created, given identities, or kept in a merge
    /// (sorted, distinct). Whatever is known about them beyond their events must be reloaded.
    pub reshaped: Vec<i64>,
}

/// Resolves each record to a customer id (`None` for a record without identities), creating
/// customers, adding identities and merging customers as needed. Call inside a write
/// transaction that holds the tenant lock. Records may be owned or borrowed (events keep theirs
/// beside the event, and are not copied to be resolved).
pub async fn resolve<R: std::borrow::Borrow<IdentityRecord>>(
    tx: &mut Tx,
    tenant_id: TenantId,
    records: &[R],
    now: i64,
) -> DbResult<(Vec<Option<i64>>, ResolveStats)> {
    let records: Vec<&IdentityRecord> = records.iter().map(|r| r.borrow()).collect();
    let records = records.as_slice();
    let mut stats = ResolveStats::default();
    // Distinct keys in first-seen order.
    let mut index: HashMap<&str, usize> = HashMap::default();
    let mut keys: Vec<&KeyedIdentity> = Vec::new();
    for r in records {
        for k in &r.identities {
            index.entry(k.ikey.as_str()).or_insert_with(|| {
                keys.push(k);
                keys.len() - 1
            });
        }
    }
    if keys.is_empty() {
        return Ok((vec![None; records.len()], stats));
    }

    // Which keys are known already, and to whom.
    let key_texts: Vec<&str> = keys.iter().map(|k| k.ikey.as_str()).collect();
    let existing: Vec<Option<i64>> = tx
        .find_ids(
            "SELECT customer_id, ikey FROM identities WHERE tenant_id = $1 AND ikey",
            &[tenant_id.into()],
            &key_texts,
        )
        .await?;

    // Join keys of one record, and keys with the customer that owns them.
    let mut uf = UnionFind::new(keys.len());
    let mut customer_node: HashMap<i64, usize> = HashMap::default();
    for (i, cid) in existing.iter().enumerate() {
        if let Some(c) = cid {
            let node = *customer_node.entry(*c).or_insert_with(|| uf.add());
            uf.union(i, node);
        }
    }
    for r in records {
        let mut it = r.identities.iter().map(|k| index[k.ikey.as_str()]);
        if let Some(first) = it.next() {
            for other in it {
                uf.union(first, other);
            }
        }
    }

    // Existing customers per component.
    let mut comp_customers: HashMap<usize, Vec<i64>> = HashMap::default();
    for (&c, &node) in &customer_node {
        let root = uf.find(node);
        comp_customers.entry(root).or_default().push(c);
    }
    // New customers for components without one, in record order (deterministic ids).
    let mut comp_owner: HashMap<usize, i64> = HashMap::default();
    let mut merges: Vec<(i64, i64)> = Vec::new(); // (merged, kept)
    let mut merge_kinds: HashMap<usize, String> = HashMap::default();
    for (root, cs) in comp_customers.iter_mut() {
        cs.sort_unstable();
        comp_owner.insert(*root, cs[0]);
        for &m in &cs[1..] {
            merges.push((m, cs[0]));
        }
        if cs.len() > 1 {
            merge_kinds.insert(*root, String::new());
        }
    }
    let mut new_customers: Vec<(usize, Option<&str>)> = Vec::new(); // (root, name)
    for r in records {
        if let Some(k) = r.identities.first() {
            let root = uf.find(index[k.ikey.as_str()]);
            if let std::collections::hash_map::Entry::Vacant(e) = comp_owner.entry(root) {
                e.insert(-1 - new_customers.len() as i64); // placeholder until ids are reserved
                new_customers.push((root, r.name.as_deref()));
            }
        }
    }
    if !new_customers.is_empty() {
        let first = tx
            .reserve_ids("customer", new_customers.len() as i64)
            .await?;
        for (n, (root, _)) in new_customers.iter().enumerate() {
            comp_owner.insert(*root, first + n as i64);
        }
        let owner = &comp_owner;
        let rows: Vec<[Arg; 4]> = new_customers
            .iter()
            .map(|(root, name)| {
                [
                    owner[root].into(),
                    tenant_id.into(),
                    (*name).into(),
                    now.into(),
                ]
            })
            .collect();
        tx.insert_rows(
            "INSERT INTO customers (id, tenant_id, display_name, created_at)",
            "",
            &rows,
        )
        .await?;
        stats.customers_created = new_customers.len() as u64;
        stats
            .reshaped
            .extend(new_customers.iter().map(|(root, _)| comp_owner[root]));
    }

    // Add the keys not seen before.
    let mut fresh: Vec<(&KeyedIdentity, i64)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let root = uf.find(i);
        if existing[i].is_none() {
            fresh.push((k, comp_owner[&root]));
        }
        if let Some(kinds) = merge_kinds.get_mut(&root)
            && !kinds.split('+').any(|s| s == k.kind.as_str())
        {
            if !kinds.is_empty() {
                kinds.push('+');
            }
            kinds.push_str(k.kind.as_str());
        }
    }
    // In key order: the keys are hashes, and stored in order they land a few to a page
    // instead of each on a page of its own (docs/BENCHMARKS.md, session 15).
    fresh.sort_unstable_by(|a, b| a.0.ikey.cmp(&b.0.ikey));
    let rows: Vec<[Arg; 6]> = fresh
        .iter()
        .map(|(k, cid)| {
            [
                tenant_id.into(),
                k.ikey.as_str().into(),
                k.kind.as_str().into(),
                (*cid).into(),
                k.value_enc.as_deref().into(),
                now.into(),
            ]
        })
        .collect();
    tx.insert_rows(
        "INSERT INTO identities (tenant_id, ikey, kind, customer_id, value_enc, first_seen)",
        "",
        &rows,
    )
    .await?;
    stats.identities_added = fresh.len() as u64;
    stats.reshaped.extend(fresh.iter().map(|(_, cid)| *cid));

    if !merges.is_empty() {
        merges.sort_unstable();
        let via: Vec<String> = merges
            .iter()
            .map(|(_, kept)| {
                let root = comp_customers
                    .iter()
                    .find(|(_, cs)| cs[0] == *kept)
                    .map(|(r, _)| *r);
                root.and_then(|r| merge_kinds.get(&r).cloned())
                    .unwrap_or_default()
            })
            .collect();
        merge_customers(tx, tenant_id, &merges, &via, now).await?;
        stats.customers_merged = merges.len() as u64;
        stats.reshaped.extend(merges.iter().map(|(_, kept)| *kept));
    }
    stats.reshaped.sort_unstable();
    stats.reshaped.dedup();

    let out = records
        .iter()
        .map(|r| {
            r.identities
                .first()
                .map(|k| comp_owner[&uf.find(index[k.ikey.as_str()])])
        })
        .collect();
    Ok((out, stats))
}

/// Merges unlinked buyers (customers of one order whose buyer was not identified) into the
/// customers their orders now name: (unlinked buyer, customer) pairs. The merge is recorded as
/// made via the order.
pub async fn link_unlinked_buyers(
    tx: &mut Tx,
    tenant_id: TenantId,
    links: &[(i64, i64)],
    now: i64,
) -> DbResult<()> {
    if links.is_empty() {
        return Ok(());
    }
    let via = vec!["order".to_owned(); links.len()];
    merge_customers(tx, tenant_id, links, &via, now).await
}

/// What becomes of a table's rows when their customer is merged into another.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Keeps {
    /// Every row moves to the kept customer.
    All,
    /// One row per person: the kept customer's own, else the merged one's that comes first by
    /// this column.
    First { ordered_by: String },
    /// The rows stay with the merged customer's id (a record of what was done with it).
    Stays,
}

/// The tables of capabilities above `know` that hold customer rows, as their migrations
/// declared them in `customer_rows`: OneID moves them without naming them.
async fn rows_of_other_capabilities(tx: &mut Tx) -> DbResult<Vec<(String, Keeps)>> {
    let rows: Vec<(String, String, Option<String>)> = tx
        .fetch_all(&sql(
            "SELECT table_name, keeps, ordered_by FROM customer_rows ORDER BY table_name",
        ))
        .await?;
    // The names go into statements: only lower-case letters and underscores are taken. A row
    // that cannot be read stops the merge rather than leave that table's rows behind.
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    rows.into_iter()
        .map(|(table, keeps, ordered_by)| {
            let read = match (keeps.as_str(), ordered_by) {
                (_, _) if !plain(&table) => None,
                ("all", None) => Some(Keeps::All),
                ("first", Some(col)) if plain(&col) => Some(Keeps::First { ordered_by: col }),
                ("stays", None) => Some(Keeps::Stays),
                _ => None,
            };
            read.map(|k| (table.clone(), k)).ok_or_else(|| {
                sqlx::Error::Configuration(
                    format!("customer_rows: the row for {table:?} ({keeps}) cannot be read").into(),
                )
                .into()
            })
        })
        .collect()
}

/// One row per person in `table`, before the merged customers' rows are moved: where the kept
/// customer has a row, the merged ones' rows are dropped; where it has none, only the one that
/// comes first by `ordered_by` (then by customer id) is left to move to it. Over every merge of
/// the call at once, so that "first" holds however many batches the moves take.
async fn drop_all_but_the_first(
    tx: &mut Tx,
    tenant_id: TenantId,
    merges: &[(i64, i64)],
    table: &str,
    ordered_by: &str,
) -> DbResult<()> {
    let mut ids: Vec<i64> = merges.iter().flat_map(|(from, to)| [*from, *to]).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<(i64, i64)> = tx
        .fetch_in(
            &format!(
                "SELECT customer_id, {ordered_by} FROM {table} WHERE tenant_id = $1 AND customer_id"
            ),
            &[tenant_id.into()],
            ids.into_iter().map(Value::from).collect(),
        )
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let order_of: HashMap<i64, i64> = rows.into_iter().collect();
    // The merged row each kept customer will take: (its order, its customer).
    let mut first_of: HashMap<i64, (i64, i64)> = HashMap::default();
    let mut dropped: Vec<i64> = Vec::new();
    for (from, to) in merges {
        let Some(&at) = order_of.get(from) else {
            continue;
        };
        if order_of.contains_key(to) {
            dropped.push(*from);
            continue;
        }
        match first_of.insert(*to, (at, *from)) {
            Some(earlier) if earlier <= (at, *from) => {
                first_of.insert(*to, earlier);
                dropped.push(*from);
            }
            Some((_, later)) => dropped.push(later),
            None => {}
        }
    }
    if !dropped.is_empty() {
        tx.execute_in(
            &format!("DELETE FROM {table} WHERE tenant_id = $1 AND customer_id"),
            &[tenant_id.into()],
            dropped.into_iter().map(Value::from).collect(),
        )
        .await?;
    }
    Ok(())
}

/// Moves everything of each merged customer to the kept one and records the merge.
async fn merge_customers(
    tx: &mut Tx,
    tenant_id: TenantId,
    merges: &[(i64, i64)],
    via: &[String],
    now: i64,
) -> DbResult<()> {
    let others = rows_of_other_capabilities(tx).await?;
    for (table, keeps) in &others {
        if let Keeps::First { ordered_by } = keeps {
            drop_all_but_the_first(tx, tenant_id, merges, table, ordered_by).await?;
        }
    }
    // The widest statement below binds 5 values per merge.
    for (batch, via) in merges.chunks(MAX_BINDS / 5).zip(via.chunks(MAX_BINDS / 5)) {
        // Placeholders in order of appearance (see `sqlite_text`): the map first, the tenant last.
        let map = values_placeholders(batch.len(), 2, 1);
        let t = 2 * batch.len() + 1;
        // What is known of the person follows them.
        for table in ["identities", "orders", "events"] {
            tx.execute(&repoint(
                tx.backend(),
                tenant_id,
                batch,
                table,
                "customer_id",
                "customer_id",
            ))
            .await?;
        }
        // Tags: the kept customer may already carry the same tag, so copy then delete.
        let mut copy = sql(format!(
            "INSERT INTO customer_tags (tenant_id, customer_id, tag_id, source, tagged_at) \
             SELECT t.tenant_id, m.column2, t.tag_id, t.source, t.tagged_at FROM customer_tags t \
             JOIN (VALUES {map}) AS m ON t.customer_id = m.column1 WHERE t.tenant_id = ${t} \
             ON CONFLICT DO NOTHING"
        ));
        for (from, to) in batch {
            copy.push_arg(*from);
            copy.push_arg(*to);
        }
        tx.execute(&copy.bind(tenant_id)).await?;
        tx.execute_in(
            "DELETE FROM customer_tags WHERE tenant_id = $1 AND customer_id",
            &[tenant_id.into()],
            batch.iter().map(|(from, _)| (*from).into()).collect(),
        )
        .await?;
        // Attributes likewise; where both have one, the kept customer's value stays.
        let mut copy = sql(format!(
            "INSERT INTO customer_attributes (tenant_id, customer_id, name, value, num, updated_at) \
             SELECT a.tenant_id, m.column2, a.name, a.value, a.num, a.updated_at FROM customer_attributes a \
             JOIN (VALUES {map}) AS m ON a.customer_id = m.column1 WHERE a.tenant_id = ${t} \
             ON CONFLICT DO NOTHING"
        ));
        for (from, to) in batch {
            copy.push_arg(*from);
            copy.push_arg(*to);
        }
        tx.execute(&copy.bind(tenant_id)).await?;
        tx.execute_in(
            "DELETE FROM customer_attributes WHERE tenant_id = $1 AND customer_id",
            &[tenant_id.into()],
            batch.iter().map(|(from, _)| (*from).into()).collect(),
        )
        .await?;
        // The rows of the capabilities above this one, as their migrations declared them.
        // (A `first` table holds only the rows that are to move by now.)
        for (table, keeps) in &others {
            if *keeps != Keeps::Stays {
                tx.execute(&repoint(
                    tx.backend(),
                    tenant_id,
                    batch,
                    table,
                    "customer_id",
                    "customer_id",
                ))
                .await?;
            }
        }
        // The merged customers, and any merged into them before, now point at the kept one.
        for match_col in ["merged_into", "id"] {
            tx.execute(&repoint(
                tx.backend(),
                tenant_id,
                batch,
                "customers",
                "merged_into",
                match_col,
            ))
            .await?;
        }
        let mut q = sql(format!(
            "INSERT INTO customer_merges (tenant_id, kept_id, merged_id, via_kind, merged_at) VALUES {}",
            values_placeholders(batch.len(), 5, 1)
        ));
        for ((from, to), v) in batch.iter().zip(via) {
            q.push_arg(tenant_id);
            q.push_arg(*to);
            q.push_arg(*from);
            q.push_arg(v.as_str());
            q.push_arg(now);
        }
        tx.execute(&q).await?;
    }
    Ok(())
}

/// `UPDATE table SET set_col = kept WHERE match_col = merged` for each (merged, kept) pair.
///
/// PostgreSQL joins the pairs as a VALUES list. SQLite's planner, without statistics, may scan
/// the whole table for that join (seconds per chunk at a million rows), so there the rows are
/// found through the index with `IN (…)` and mapped with a CASE. Placeholders appear in order
/// (see `sqlite_text`).
fn repoint(
    backend: Backend,
    tenant_id: TenantId,
    batch: &[(i64, i64)],
    table: &str,
    set_col: &str,
    match_col: &str,
) -> Sql {
    let n = batch.len();
    let mut q = match backend {
        Backend::Postgres => sql(format!(
            "UPDATE {table} SET {set_col} = m.column2 FROM (VALUES {}) AS m \
             WHERE {table}.{match_col} = m.column1 AND {table}.tenant_id = ${}",
            values_placeholders(n, 2, 1),
            2 * n + 1
        )),
        Backend::Sqlite => {
            let whens: String = (0..n)
                .map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
                .collect();
            sql(format!(
                "UPDATE {table} SET {set_col} = CASE {match_col}{whens} END \
                 WHERE tenant_id = ${} AND {match_col} IN ({})",
                2 * n + 1,
                list_placeholders(n, 2 * n + 2)
            ))
        }
    };
    for (from, to) in batch {
        q.push_arg(*from);
        q.push_arg(*to);
    }
    q.push_arg(tenant_id);
    if backend == Backend::Sqlite {
        for (from, _) in batch {
            q.push_arg(*from);
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_find_roots_are_the_smallest_member() {
        let mut uf = UnionFind::new(5);
        uf.union(3, 4);
        uf.union(4, 1);
        assert_eq!(uf.find(3), 1);
        assert_eq!(uf.find(0), 0);
        let n = uf.add();
        uf.union(n, 0);
        assert_eq!(uf.find(n), 0);
    }
}
