//! Coupons (优惠券): templates, and coupons granted to customers (claimed by them, or issued by
//! the brand to a list or a segment snapshot), redeemed online or in store exactly once.
//!
//! Every grant and every redemption runs under the tenant's write lock, so a template's total
//! and per-customer limits hold however many requests arrive at once, and a code is redeemed
//! at most once.

use crate::know::CustomerId;
use crate::platform::Fen;
mod granting;
mod redeeming;
mod report;
mod templates;

use serde::{Deserialize, Serialize};

use crate::platform::db::DbError;
use crate::platform::refusal::{Refusal, Refuse};

pub use granting::{Grant, grant, grant_in};
pub use redeeming::{Prior, UseOn, discount, redeem, refund_order, stacked_discount};
pub use report::{Report, coupon, coupons_of, report};
pub use templates::{
    MOST_ADDED, add_to_total, create_template, set_claim_via, stop_issuing, template, templates,
};

const DAY_MS: i64 = 86_400_000;

/// Letters and digits a guide can read aloud and type without confusing (no 0/O, 1/I/L).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `value` fen off.
    AmountOff,
    /// `value` percent off (1–99).
    PercentOff,
    /// A gift (`gift`), no money off.
    FreeGift,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::AmountOff => "amount_off",
            Kind::PercentOff => "percent_off",
            Kind::FreeGift => "free_gift",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::AmountOff, Kind::PercentOff, Kind::FreeGift]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A template as a brand writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub value: i64,
    #[serde(default)]
    pub gift: Option<String>,
    /// Minimum order amount in fen (满 X).
    #[serde(default)]
    pub threshold: Fen,
    /// Fixed validity (UTC ms) …
    #[serde(default)]
    pub starts_at: Option<i64>,
    #[serde(default)]
    pub ends_at: Option<i64>,
    /// … or valid for this many days after it is granted.
    #[serde(default)]
    pub valid_days: Option<i64>,
    #[serde(default = "one")]
    pub per_customer: i64,
    pub total: i64,
    /// Channels and stores where it may be used; empty: everywhere.
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub stores: Vec<String>,
    #[serde(default)]
    pub stackable: bool,
    /// Where it may be claimed; a customer's own page claims only `h5` templates.
    #[serde(default)]
    pub claim_via: ClaimVia,
}

/// Where a template may be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimVia {
    /// On a customer's own page (`/h5/coupons/{id}`).
    H5,
    /// With a package card.
    Card,
    /// As a gift for points.
    Points,
    /// By the brand's systems only (claims and issues through the API).
    #[default]
    Api,
}

impl ClaimVia {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimVia::H5 => "h5",
            ClaimVia::Card => "card",
            ClaimVia::Points => "points",
            ClaimVia::Api => "api",
        }
    }
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub value: i64,
    pub gift: Option<String>,
    pub threshold: Fen,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub valid_days: Option<i64>,
    pub per_customer: i64,
    pub total: i64,
    pub issued: i64,
    pub channels: Option<String>,
    pub stores: Option<String>,
    pub stackable: bool,
    pub created_at: i64,
    /// `h5`, `card`, `points` or `api` ([`ClaimVia`]).
    pub claim_via: String,
    /// When it stopped issuing (停止发放); none while it issues.
    pub stopped_at: Option<i64>,
}

impl Template {
    /// Whether a customer may claim it from their own page.
    pub fn offered_on_h5(&self) -> bool {
        self.claim_via == ClaimVia::H5.as_str()
    }
}

crate::platform::text_enum::text_enum! {
    /// Where a coupon stands: `claimed` (held, usable until its date), `redeemed` on an order,
    /// `refunded` with the order it was redeemed on (a refund within its dates makes it
    /// `claimed` again).
    pub enum CouponStatus {
        Claimed = "claimed",
        Redeemed = "redeemed",
        Refunded = "refunded",
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Coupon {
    pub id: i64,
    pub template_id: i64,
    pub customer_id: CustomerId,
    pub code: String,
    pub status: CouponStatus,
    pub source: String,
    pub granted_at: i64,
    pub valid_from: i64,
    pub valid_until: i64,
    pub redeemed_at: Option<i64>,
    pub order_ref: Option<String>,
    pub order_amount: Option<Fen>,
    pub discount: Option<Fen>,
    /// Who typed the code (`console:<user>`, `api:<key>`); none for coupons redeemed before
    /// this was kept.
    pub redeemed_by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CouponError {
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("template {0} not found")]
    NoTemplate(i64),
    #[error("coupon {0:?} not found")]
    NoCoupon(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Refuse for CouponError {
    fn refusal(&self) -> Refusal {
        match self {
            CouponError::Invalid { .. } => Refusal::Invalid,
            CouponError::NoTemplate(_) | CouponError::NoCoupon(_) => Refusal::NotFound("not_found"),
            CouponError::Refused(_) => Refusal::Conflict("refused"),
            CouponError::Db(_) => Refusal::Internal,
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CouponError {
    CouponError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl TemplateInput {
    /// Names the first field that is wrong.
    pub fn check(&self) -> Result<(), CouponError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 60 {
            return Err(invalid("name", "must be 1–60 characters"));
        }
        match self.kind {
            Kind::AmountOff if self.value <= 0 => {
                return Err(invalid("value", "an amount off must be positive (fen)"));
            }
            Kind::PercentOff if !(1..=99).contains(&self.value) => {
                return Err(invalid("value", "a percentage off must be 1–99"));
            }
            Kind::FreeGift if self.gift.as_deref().is_none_or(|g| g.trim().is_empty()) => {
                return Err(invalid("gift", "a gift coupon names its gift"));
            }
            _ => {}
        }
        if self.threshold < Fen::ZERO {
            return Err(invalid("threshold", "must not be negative"));
        }
        match (self.starts_at, self.ends_at, self.valid_days) {
            (_, Some(_), Some(_)) => {
                return Err(invalid(
                    "valid_days",
                    "give ends_at or valid_days, not both",
                ));
            }
            (_, None, None) => return Err(invalid("ends_at", "give ends_at or valid_days")),
            (Some(s), Some(e), None) if s >= e => {
                return Err(invalid("ends_at", "must be after starts_at"));
            }
            (_, None, Some(d)) if !(1..=3_650).contains(&d) => {
                return Err(invalid("valid_days", "must be 1–3650"));
            }
            _ => {}
        }
        if self.per_customer < 1 {
            return Err(invalid("per_customer", "must be at least 1"));
        }
        if self.total < 1 {
            return Err(invalid("total", "must be at least 1"));
        }
        Ok(())
    }
}

const TEMPLATE_COLS: &str = "id, name, kind, value, gift, threshold, starts_at, ends_at, valid_days, per_customer, \
     total, issued, channels, stores, CASE WHEN stackable = 1 THEN TRUE ELSE FALSE END AS stackable, created_at, claim_via, stopped_at";

const COUPON_COLS: &str = "id, template_id, customer_id, code, status, source, granted_at, valid_from, valid_until, \
     redeemed_at, order_ref, order_amount, discount, redeemed_by";

fn list_text(v: &[String]) -> Option<String> {
    let v: Vec<&str> = v
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    (!v.is_empty()).then(|| v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::{granting::*, redeeming::*};

    #[test]
    fn stacked_coupons_take_what_the_others_left() {
        let fifty = |prior: &[Prior]| {
            stacked_discount(prior, Fen::new(10_000), Kind::AmountOff, 5_000, true)
        };
        let first = fifty(&[]).expect("first");
        let p1 = Prior {
            discount: first,
            amount: Fen::new(10_000),
            stackable: true,
        };
        let second = fifty(&[p1]).expect("second");
        let p2 = Prior {
            discount: second,
            amount: Fen::new(10_000),
            stackable: true,
        };
        assert_eq!((first, second), (Fen::new(5_000), Fen::new(5_000)));
        assert!(fifty(&[p1, p2]).is_err(), "nothing is left");
        // A percentage applies to what is left, not to the whole order.
        assert_eq!(
            stacked_discount(&[p1], Fen::new(10_000), Kind::PercentOff, 10, true),
            Ok(Fen::new(500))
        );
        // Either side that does not stack stands alone; the amount is the first one's.
        let alone = Prior {
            discount: Fen::new(1_000),
            amount: Fen::new(10_000),
            stackable: false,
        };
        assert!(fifty(&[alone]).is_err());
        assert!(stacked_discount(&[p1], Fen::new(10_000), Kind::AmountOff, 100, false).is_err());
        assert!(stacked_discount(&[p1], Fen::new(20_000), Kind::AmountOff, 100, true).is_err());
        // A percentage of a huge amount does not wrap.
        assert_eq!(
            discount(Kind::PercentOff, 50, Fen::new(i64::MAX)),
            Fen::new(i64::MAX / 2)
        );
    }

    proptest::proptest! {
        /// However many coupons of whatever kinds stack on an order, together they never take
        /// more than the order, and none takes a negative amount.
        #[test]
        fn stacked_coupons_never_take_more_than_the_order(
            amount in proptest::strategy::Strategy::prop_map(0i64..10_000_000, Fen::new),
            coupons in proptest::collection::vec((0u8..3, 0i64..20_000_000), 0..8),
        ) {
            let mut prior: Vec<Prior> = Vec::new();
            for (k, value) in coupons {
                let kind = [Kind::AmountOff, Kind::PercentOff, Kind::FreeGift][usize::from(k)];
                let value = if kind == Kind::PercentOff { value % 101 } else { value };
                if let Ok(off) = stacked_discount(&prior, amount, kind, value, true) {
                    proptest::prop_assert!(off >= Fen::new(0));
                    prior.push(Prior { discount: off, amount, stackable: true });
                }
            }
            let total: Fen = prior.iter().map(|p| p.discount).sum();
            proptest::prop_assert!(total <= amount, "{} taken off {}", total, amount);
        }
    }

    #[test]
    fn discounts() {
        assert_eq!(
            discount(Kind::AmountOff, 3_000, Fen::new(29_900)),
            Fen::new(3_000)
        );
        assert_eq!(
            discount(Kind::AmountOff, 3_000, Fen::new(2_000)),
            Fen::new(2_000)
        );
        assert_eq!(
            discount(Kind::PercentOff, 15, Fen::new(10_000)),
            Fen::new(1_500)
        );
        assert_eq!(discount(Kind::FreeGift, 0, Fen::new(10_000)), Fen::new(0));
    }

    #[test]
    fn codes_are_readable() {
        let c = new_code();
        assert_eq!(c.len(), 10);
        assert!(c.bytes().all(|b| CODE_ALPHABET.contains(&b)), "{c}");
    }

    #[test]
    fn templates_name_what_is_wrong() {
        let ok = TemplateInput {
            name: "满300减30".into(),
            kind: Kind::AmountOff,
            value: 3_000,
            gift: None,
            threshold: Fen::new(30_000),
            starts_at: None,
            ends_at: None,
            valid_days: Some(30),
            per_customer: 1,
            total: 100,
            channels: Vec::new(),
            stores: Vec::new(),
            stackable: false,
            claim_via: ClaimVia::Api,
        };
        assert!(ok.check().is_ok());
        let bad = |f: fn(&mut TemplateInput), field: &str| {
            let mut t = ok.clone();
            f(&mut t);
            match t.check() {
                Err(CouponError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        };
        bad(|t| t.value = 0, "value");
        bad(|t| t.valid_days = None, "ends_at");
        bad(|t| t.ends_at = Some(5), "valid_days");
        bad(|t| t.total = 0, "total");
        bad(
            |t| {
                t.kind = Kind::PercentOff;
                t.value = 100
            },
            "value",
        );
        bad(
            |t| {
                t.kind = Kind::FreeGift;
                t.gift = None
            },
            "gift",
        );
    }
}
