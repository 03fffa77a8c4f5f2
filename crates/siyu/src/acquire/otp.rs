//! One-time SMS codes for H5 pages: six digits, valid five minutes, at most five tries, one new
//! code a minute per number. The code is derived from a secret and the message's key, and only
//! a keyed hash of it is stored; it goes out through the outbox as a verification message
//! (which the contact policy always lets through) holding a placeholder, and the dispatcher
//! puts the code in on the way to the provider.
//!
//! Anyone on the internet can ask for a code, and every code is a paid SMS to someone's phone,
//! so each request spends budgets taken in the same transaction (see [`OtpLimits`]): codes per
//! number per day, numbers per card, codes per address per hour, codes per tenant per day, and
//! every tenant's codes per hour together, whose end logs an alert. A try is counted before the
//! code is compared, so parallel guesses get five tries in all, and five wrong ones lock the
//! number for half an hour.

use crate::channels::sms::SmsSettings;
use crate::engage::outbox::{self, CODE_KEY_PREFIX, CODE_PLACEHOLDER, NewMessage};
use crate::engage::policy::Purpose;
use crate::platform::TenantId;
use crate::platform::crypto::{FieldCipher, TenantLookup, constant_time_eq};
use crate::platform::db::{Db, DbError, sql};
use crate::platform::limits::{self, Budget, Window};
use crate::platform::metrics;
use crate::platform::refusal::{Refusal, Refuse};

pub const VALID_MS: i64 = 5 * 60_000;
pub const RESEND_MS: i64 = 60_000;
pub const MAX_TRIES: i64 = 5;
/// How long a number stays locked after [`MAX_TRIES`] wrong codes.
pub const LOCK_MS: i64 = 30 * 60_000;

#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    #[error("a code was sent less than a minute ago; wait before asking again")]
    TooSoon,
    #[error("too many wrong codes for this number: try again in half an hour")]
    Locked,
    #[error("this number has had its codes for today; try again tomorrow")]
    PhoneLimit,
    #[error("this card has sent codes to as many numbers as it may")]
    CardLimit,
    #[error("too many codes asked from this address; try again later")]
    AddressLimit,
    #[error("codes cannot be sent just now; try again later")]
    Budget,
    #[error("no valid code for this number: ask for a new one")]
    Expired,
    #[error("too many wrong codes: ask for a new one")]
    TooManyTries,
    #[error("the code is wrong")]
    Wrong,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl OtpError {
    /// The `outcome` label of [`metrics::OTP_REQUESTS`].
    fn outcome(&self) -> &'static str {
        match self {
            OtpError::TooSoon => "too_soon",
            OtpError::Locked => "locked",
            OtpError::PhoneLimit => "phone_limit",
            OtpError::CardLimit => "card_limit",
            OtpError::AddressLimit => "address_limit",
            OtpError::Budget => "budget",
            OtpError::Expired | OtpError::TooManyTries | OtpError::Wrong => "rejected",
            OtpError::Db(_) => "error",
        }
    }
}

impl Refuse for OtpError {
    fn refusal(&self) -> Refusal {
        match self {
            OtpError::TooSoon => Refusal::TooSoon("too_soon"),
            OtpError::Locked => Refusal::TooSoon("locked"),
            OtpError::PhoneLimit => Refusal::TooSoon("phone_limit"),
            OtpError::CardLimit => Refusal::TooSoon("card_limit"),
            OtpError::AddressLimit => Refusal::TooSoon("rate_limited"),
            OtpError::Budget => Refusal::Unavailable("sms_budget"),
            OtpError::Db(_) => Refusal::Internal,
            OtpError::Expired | OtpError::TooManyTries | OtpError::Wrong => {
                Refusal::Rejected("code_rejected")
            }
        }
    }
}

/// How many codes the public may have sent (`[sms]` `otp_*` settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpLimits {
    /// Codes one number may receive in a day, from every brand on this server.
    pub per_phone_day: i64,
    /// Numbers one card may send codes to.
    pub numbers_per_card: i64,
    /// Codes asked from one address in an hour.
    pub per_address_hour: i64,
    /// Codes one tenant sends in a day.
    pub per_tenant_day: i64,
    /// Codes every tenant together sends in an hour: the circuit breaker.
    pub global_per_hour: i64,
}

impl Default for OtpLimits {
    fn default() -> Self {
        OtpLimits {
            per_phone_day: 5,
            numbers_per_card: 3,
            per_address_hour: 10,
            per_tenant_day: 2_000,
            global_per_hour: 10_000,
        }
    }
}

impl OtpLimits {
    /// The defaults, with what `[sms]` sets instead.
    pub fn from_settings(s: &SmsSettings) -> OtpLimits {
        let d = OtpLimits::default();
        OtpLimits {
            per_phone_day: s.otp_per_phone_day.unwrap_or(d.per_phone_day),
            numbers_per_card: s.otp_numbers_per_card.unwrap_or(d.numbers_per_card),
            per_address_hour: s.otp_per_address_hour.unwrap_or(d.per_address_hour),
            per_tenant_day: s.otp_per_tenant_day.unwrap_or(d.per_tenant_day),
            global_per_hour: s.otp_global_per_hour.unwrap_or(d.global_per_hour),
        }
    }
}

fn code_hash(lookup: &TenantLookup, phone: &str, purpose: &str, code: &str) -> String {
    lookup.hash(&format!("otp:{purpose}:{phone}:{code}"))
}

/// Who a code is sent as: the brand whose 【name】 signs it, and the provider's approved
/// template where the provider needs one.
pub struct Sender<'a> {
    pub tenant: TenantId,
    pub brand: &'a str,
    pub template_code: Option<String>,
}

/// Who asks for a code: from which card's page, and from which address (as the server trusts
/// it; see `siyu_web::client_ip`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Asker<'a> {
    pub card: Option<i64>,
    pub address: Option<&'a str>,
}

/// Sends a new code to `phone` for `purpose`, if every budget allows it; counted on
/// `/metrics` by outcome.
#[allow(clippy::too_many_arguments)]
pub async fn request(
    db: &Db,
    cipher: &FieldCipher,
    from: Sender<'_>,
    asker: Asker<'_>,
    limits: &OtpLimits,
    phone: &str,
    purpose: &str,
    now: i64,
) -> Result<(), OtpError> {
    let r = send_code(db, cipher, from, asker, limits, phone, purpose, now).await;
    let outcome = r.as_ref().map_or_else(OtpError::outcome, |()| "sent");
    ::metrics::counter!(metrics::OTP_REQUESTS, "outcome" => outcome).increment(1);
    r
}

#[allow(clippy::too_many_arguments)]
async fn send_code(
    db: &Db,
    cipher: &FieldCipher,
    from: Sender<'_>,
    asker: Asker<'_>,
    limits: &OtpLimits,
    phone: &str,
    purpose: &str,
    now: i64,
) -> Result<(), OtpError> {
    let Sender {
        tenant,
        brand,
        template_code,
    } = from;
    let lookup = cipher.lookup(tenant);
    let address = lookup.hash(phone);
    // Derived from the message's key, never stored: the outbox and the log hold a placeholder.
    let dedupe_key = format!("{CODE_KEY_PREFIX}{purpose}:{address}:{now}");
    let code = cipher.one_time_code(&outbox::code_seed(tenant, &dedupe_key));
    let mut tx = db.begin().await?;
    // A new code replaces the old one only once a minute has passed and the number is not
    // locked: one statement, so two requests at once cannot both send.
    let replaced: Option<(i64,)> = tx
        .fetch_optional(
            &sql("INSERT INTO otp_codes (tenant_id, address_hash, purpose, code_hash, tries, expires_at, created_at) \
                  VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT (tenant_id, address_hash, purpose) DO UPDATE SET \
                  code_hash = $4, tries = 0, expires_at = $5, created_at = $6 \
                  WHERE otp_codes.created_at <= $7 AND otp_codes.locked_until <= $6 RETURNING created_at")
                .bind(tenant)
                .bind(address.clone())
                .bind(purpose)
                .bind(code_hash(&lookup, phone, purpose, &code))
                .bind(now + VALID_MS)
                .bind(now)
                .bind(now - RESEND_MS),
        )
        .await?;
    if replaced.is_none() {
        let (locked_until,): (i64,) = tx
            .fetch_one(
                &sql("SELECT locked_until FROM otp_codes WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3")
                    .bind(tenant)
                    .bind(address.clone())
                    .bind(purpose),
            )
            .await?;
        return Err(if locked_until > now {
            OtpError::Locked
        } else {
            OtpError::TooSoon
        });
    }
    let budget = cipher.budget_hash(phone);
    spend_budgets(&mut tx, tenant, (&address, &budget), asker, limits, now).await?;
    outbox::enqueue_in(
        &mut tx,
        &[NewMessage {
            tenant_id: tenant,
            purpose: Purpose::Verification,
            customer_id: None,
            address: outbox::Address::of_phone(cipher, &lookup, phone),
            content: format!(
                "【{brand}】您的验证码是{CODE_PLACEHOLDER}，5分钟内有效。如非本人操作请忽略。"
            ),
            template_code,
            template_params: vec![("code".into(), CODE_PLACEHOLDER.into())],
            dedupe_key,
            campaign_id: None,
            variant: None,
            not_before: now,
        }],
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Takes one code from each budget it counts against, or refuses with the first one spent
/// (the caller's transaction then rolls back, so nothing was counted). The number comes as the
/// tenant's hash and the server's budget hash (which counts it across brands).
async fn spend_budgets(
    tx: &mut crate::platform::db::Tx,
    tenant: TenantId,
    (phone_hash, budget_hash): (&str, &str),
    asker: Asker<'_>,
    limits: &OtpLimits,
    now: i64,
) -> Result<(), OtpError> {
    let phone = Budget::across_tenants("otp_phone", budget_hash, Window::Day, limits.per_phone_day);
    if limits::take(tx, phone, now).await?.is_none() {
        return Err(OtpError::PhoneLimit);
    }
    if let Some(card) = asker.card {
        // A number already texted from this card does not count again.
        let new_number = tx
            .execute(
                &sql("INSERT INTO otp_card_numbers (tenant_id, card_id, address_hash, created_at) VALUES ($1, $2, $3, $4) \
                      ON CONFLICT (tenant_id, card_id, address_hash) DO NOTHING")
                    .bind(tenant)
                    .bind(card)
                    .bind(phone_hash)
                    .bind(now),
            )
            .await?
            > 0;
        let card = card.to_string();
        let numbers = Budget::new(
            tenant,
            "otp_card",
            &card,
            Window::Ever,
            limits.numbers_per_card,
        );
        if new_number && limits::take(tx, numbers, now).await?.is_none() {
            return Err(OtpError::CardLimit);
        }
    }
    if let Some(address) = asker.address {
        let from = Budget::across_tenants(
            "otp_address",
            address,
            Window::Hour,
            limits.per_address_hour,
        );
        if limits::take(tx, from, now).await?.is_none() {
            return Err(OtpError::AddressLimit);
        }
    }
    let tenant_id = tenant.to_string();
    let day = Budget::new(
        tenant,
        "sms_tenant",
        &tenant_id,
        Window::Day,
        limits.per_tenant_day,
    );
    if limits::take(tx, day, now).await?.is_none() {
        tracing::warn!(
            tenant = %tenant,
            limit = limits.per_tenant_day,
            "a tenant's one-time codes for today are spent"
        );
        return Err(OtpError::Budget);
    }
    let all = Budget::across_tenants("sms_global", "all", Window::Hour, limits.global_per_hour);
    match limits::take(tx, all, now).await? {
        None => return Err(OtpError::Budget),
        Some(n) if n == limits.global_per_hour => {
            ::metrics::counter!(metrics::SMS_CIRCUIT_OPEN).increment(1);
            tracing::error!(
                alert = "sms_circuit_open",
                limit = limits.global_per_hour,
                "ALERT: the hour's one-time-code budget of every tenant is spent; codes are refused until the hour ends"
            )
        }
        Some(_) => {}
    }
    Ok(())
}

/// Checks a code; a right one is used up.
pub async fn verify(
    db: &Db,
    cipher: &FieldCipher,
    tenant: TenantId,
    phone: &str,
    purpose: &str,
    code: &str,
    now: i64,
) -> Result<(), OtpError> {
    let lookup = cipher.lookup(tenant);
    let address = lookup.hash(phone);
    // The try is counted before the code is compared, in one statement: parallel guesses cannot
    // all read "fewer than five tries". The fifth locks the number.
    let reserved: Option<(String,)> = db
        .fetch_optional(
            &sql("UPDATE otp_codes SET tries = tries + 1, \
                  locked_until = CASE WHEN tries + 1 >= $4 THEN $5 ELSE locked_until END \
                  WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3 AND tries < $4 AND expires_at > $6 \
                  RETURNING code_hash")
                .bind(tenant)
                .bind(address.clone())
                .bind(purpose)
                .bind(MAX_TRIES)
                .bind(now + LOCK_MS)
                .bind(now),
        )
        .await?;
    let Some((hash,)) = reserved else {
        let row: Option<(i64, i64)> = db
            .fetch_optional(
                &sql("SELECT tries, expires_at FROM otp_codes WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3")
                    .bind(tenant)
                    .bind(address)
                    .bind(purpose),
            )
            .await?;
        return Err(match row {
            Some((tries, expires_at)) if tries >= MAX_TRIES && expires_at > now => {
                OtpError::TooManyTries
            }
            _ => OtpError::Expired,
        });
    };
    let given = code_hash(&lookup, phone, purpose, code.trim());
    if !constant_time_eq(given.as_bytes(), hash.as_bytes()) {
        return Err(OtpError::Wrong);
    }
    // Used once: deleting it is conditional on the hash, so two racing checks use it once.
    let n = db
        .execute(
            &sql("DELETE FROM otp_codes WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3 AND code_hash = $4")
                .bind(tenant)
                .bind(address)
                .bind(purpose)
                .bind(hash),
        )
        .await?;
    if n == 0 {
        return Err(OtpError::Expired);
    }
    Ok(())
}
