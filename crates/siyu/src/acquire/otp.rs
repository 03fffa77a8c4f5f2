//! One-time SMS codes for H5 pages: six digits, valid five minutes, at most five tries, one new
//! code a minute per number. Only a keyed hash of the code is stored, and the code goes out
//! through the outbox as a verification message (which the contact policy always lets through).

use crate::platform::refusal::{Refusal, Refuse};
use rand::Rng;

use crate::engage::outbox::{self, NewMessage};
use crate::engage::policy::Purpose;
use crate::platform::crypto::{FieldCipher, constant_time_eq};
use crate::platform::db::{Db, DbError, sql};

pub const VALID_MS: i64 = 5 * 60_000;
pub const RESEND_MS: i64 = 60_000;
pub const MAX_TRIES: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    #[error("a code was sent less than a minute ago; wait before asking again")]
    TooSoon,
    #[error("no valid code for this number: ask for a new one")]
    Expired,
    #[error("too many wrong codes: ask for a new one")]
    TooManyTries,
    #[error("the code is wrong")]
    Wrong,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for OtpError {
    fn refusal(&self) -> Refusal {
        match self {
            OtpError::TooSoon => Refusal::TooSoon("too_soon"),
            OtpError::Db(_) => Refusal::Internal,
            OtpError::Expired | OtpError::TooManyTries | OtpError::Wrong => {
                Refusal::Rejected("code_rejected")
            }
        }
    }
}

fn code_hash(cipher: &FieldCipher, phone: &str, purpose: &str, code: &str) -> String {
    cipher.lookup_hash(&format!("otp:{purpose}:{phone}:{code}"))
}

/// Who a code is sent as: the brand whose 【name】 signs it, and the provider's approved
/// template where the provider needs one.
pub struct Sender<'a> {
    pub tenant: i64,
    pub brand: &'a str,
    pub template_code: Option<String>,
}

/// Sends a new code to `phone` for `purpose`.
pub async fn request(
    db: &Db,
    cipher: &FieldCipher,
    from: Sender<'_>,
    phone: &str,
    purpose: &str,
    now: i64,
) -> Result<(), OtpError> {
    let Sender {
        tenant,
        brand,
        template_code,
    } = from;
    let address = cipher.lookup_hash(phone);
    let last: Option<(i64,)> = db
        .fetch_optional(
            &sql("SELECT created_at FROM otp_codes WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3")
                .bind(tenant)
                .bind(address.clone())
                .bind(purpose),
        )
        .await?;
    if last.is_some_and(|(at,)| now - at < RESEND_MS) {
        return Err(OtpError::TooSoon);
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000));
    let mut tx = db.begin().await?;
    tx.execute(
        &sql("INSERT INTO otp_codes (tenant_id, address_hash, purpose, code_hash, tries, expires_at, created_at) \
              VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT (tenant_id, address_hash, purpose) DO UPDATE SET \
              code_hash = $4, tries = 0, expires_at = $5, created_at = $6")
            .bind(tenant)
            .bind(address.clone())
            .bind(purpose)
            .bind(code_hash(cipher, phone, purpose, &code))
            .bind(now + VALID_MS)
            .bind(now),
    )
    .await?;
    outbox::enqueue_in(
        &mut tx,
        &[NewMessage {
            tenant_id: tenant,
            purpose: Purpose::Verification,
            customer_id: None,
            address: outbox::Address::of_phone(cipher, phone),
            content: format!("【{brand}】您的验证码是{code}，5分钟内有效。如非本人操作请忽略。"),
            template_code,
            template_params: vec![("code".into(), code)],
            dedupe_key: format!("otp:{purpose}:{address}:{now}"),
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

/// Checks a code; a right one is used up.
pub async fn verify(
    db: &Db,
    cipher: &FieldCipher,
    tenant: i64,
    phone: &str,
    purpose: &str,
    code: &str,
    now: i64,
) -> Result<(), OtpError> {
    let address = cipher.lookup_hash(phone);
    let row: Option<(String, i64, i64)> = db
        .fetch_optional(
            &sql("SELECT code_hash, tries, expires_at FROM otp_codes WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3")
                .bind(tenant)
                .bind(address.clone())
                .bind(purpose),
        )
        .await?;
    let Some((hash, tries, expires_at)) = row else {
        return Err(OtpError::Expired);
    };
    if expires_at <= now {
        return Err(OtpError::Expired);
    }
    if tries >= MAX_TRIES {
        return Err(OtpError::TooManyTries);
    }
    let given = code_hash(cipher, phone, purpose, code.trim());
    if !constant_time_eq(given.as_bytes(), hash.as_bytes()) {
        db.execute(
            &sql("UPDATE otp_codes SET tries = tries + 1 WHERE tenant_id = $1 AND address_hash = $2 AND purpose = $3")
                .bind(tenant)
                .bind(address)
                .bind(purpose),
        )
        .await?;
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
