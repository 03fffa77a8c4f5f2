//! The Redis stock gate: Lua scripts that seed, take and give back a sale's units, for several
//! processes selling one sale.

use crate::know::CustomerId;
use crate::platform::TenantId;
use std::sync::Arc;

use super::*;
use crate::platform::db::Db;

/// Keys per sale: `{prefix}:{tenant}:{sale}:left` (units) and `…:held` (a hash of units per
/// customer).
pub(super) struct RedisGate {
    pub(super) conn: redis::aio::MultiplexedConnection,
    pub(super) prefix: String,
    pub(super) seed: redis::Script,
    pub(super) take: redis::Script,
    pub(super) give: redis::Script,
}

/// Seeds a sale once: a process that finds the keys leaves them (Redis holds the truth).
pub(super) const SEED_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"#;

/// 1 taken, -1 sold out, -2 the customer's limit.
pub(super) const TAKE_LUA: &str = r#"
local q = tonumber(ARGV[2])
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if held + q > tonumber(ARGV[3]) then return -2 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left < q then return -1 end
redis.call('DECRBY', KEYS[1], q)
redis.call('HINCRBY', KEYS[2], ARGV[1], q)
return 1
"#;

pub(super) const GIVE_LUA: &str = r#"
local q = tonumber(ARGV[2])
if ARGV[3] == '1' then redis.call('INCRBY', KEYS[1], q) end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -q) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
"#;

impl RedisGate {
    async fn connect(url: &str, prefix: &str) -> Result<RedisGate, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(RedisGate {
            conn,
            prefix: prefix.to_owned(),
            seed: redis::Script::new(SEED_LUA),
            take: redis::Script::new(TAKE_LUA),
            give: redis::Script::new(GIVE_LUA),
        })
    }

    fn keys(&self, tenant: TenantId, sale: i64) -> (String, String) {
        let base = format!("{}:{tenant}:{sale}", self.prefix);
        (format!("{base}:left"), format!("{base}:held"))
    }

    pub(super) async fn seed(
        &self,
        tenant: TenantId,
        sale: i64,
        c: &Counter,
    ) -> Result<(), FlashError> {
        let (left, held) = self.keys(tenant, sale);
        let mut inv = self.seed.key(left);
        inv.key(held).arg(c.left);
        for (cu, q) in &c.held {
            inv.arg(cu.get()).arg(*q);
        }
        let _: i64 = inv
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(gate_error)?;
        Ok(())
    }

    pub(super) async fn take(
        &self,
        tenant: TenantId,
        s: &Sale,
        customer: CustomerId,
        qty: i64,
    ) -> Result<(), FlashError> {
        let (left, held) = self.keys(tenant, s.id);
        let r: i64 = self
            .take
            .key(left)
            .key(held)
            .arg(customer.get())
            .arg(qty)
            .arg(s.per_customer)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(gate_error)?;
        match r {
            1 => Ok(()),
            -2 => Err(FlashError::LimitReached(s.per_customer)),
            _ => Err(FlashError::SoldOut),
        }
    }

    pub(super) async fn give(
        &self,
        tenant: TenantId,
        sale: i64,
        customer: CustomerId,
        qty: i64,
        to_stock: bool,
    ) {
        let (left, held) = self.keys(tenant, sale);
        let r: Result<i64, _> = self
            .give
            .key(left)
            .key(held)
            .arg(customer.get())
            .arg(qty)
            .arg(if to_stock { "1" } else { "0" })
            .invoke_async(&mut self.conn.clone())
            .await;
        if let Err(e) = r {
            // Redis now counts fewer units than the store: the sale undersells, never oversells.
            tracing::error!(error = %e, tenant = %tenant, sale, "returning units to the Redis gate failed");
        }
    }
}

pub(super) fn gate_error(e: redis::RedisError) -> FlashError {
    FlashError::Store(format!("the Redis stock gate failed: {e}"))
}

impl FlashSales {
    /// Counts stock in Redis at `url` under the key prefix `prefix` (see [`Gate`]).
    pub async fn with_redis(
        db: Db,
        url: &str,
        prefix: &str,
    ) -> Result<Arc<FlashSales>, FlashError> {
        let g = RedisGate::connect(url, prefix).await.map_err(gate_error)?;
        Ok(Self::with_gate(db, Gate::Redis(Box::new(g))))
    }
}
