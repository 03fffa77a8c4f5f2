//! SMS recall campaigns (短信召回): an audience frozen in a segment snapshot, one or more
//! versions of the text (A/B variants) with an optional hold-out control group, content
//! checks before anything is sent, and a launch that turns the audience into outbox messages:
//! one per person, with tracking links in place of URLs, sent from the scheduled time within
//! the contact policy's window and under the provider's rate.

use crate::know::CustomerId;
use crate::platform::Fen;
use crate::platform::TenantId;
pub mod approval;
mod content;
mod launch;
mod records;
mod report;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::links::{self};
use crate::engage::outbox::OutboxError;
use crate::know::segments::SegmentError;
use crate::platform::db::DbError;
use crate::platform::refusal::{Refusal, Refuse};

pub use content::{ContentReport, FORBIDDEN_WORDS, check_content};
use content::{Piece, pieces};
pub use launch::{launch, launch_then};
pub use records::{create, get, list};
pub use report::{LaunchReport, launch_report};

/// The variant name of the hold-out group, which is sent nothing.
pub const CONTROL: &str = "control";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VariantSpec {
    pub name: String,
    pub content: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewCampaign {
    pub name: String,
    pub snapshot_id: i64,
    pub variants: Vec<VariantSpec>,
    #[serde(default)]
    pub holdout_percent: i64,
    pub seed: Option<String>,
    /// Where `{link}` in the text leads.
    pub target_url: Option<String>,
    /// The provider's approved template (Aliyun and Tencent send only templates).
    pub template_code: Option<String>,
    /// Phones never to send to in this campaign.
    #[serde(default)]
    pub exclude_phones: Vec<String>,
    /// Words to refuse on top of [`FORBIDDEN_WORDS`].
    #[serde(default)]
    pub forbidden_words: Vec<String>,
    /// Fen per billable part (default 4.5 fen, rounded to 5).
    pub cost_per_part: Option<Fen>,
    /// Days after sending in which orders count towards the campaign (default 7).
    pub window_days: Option<i64>,
    /// Not sent before this time (default: now).
    pub scheduled_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Campaign {
    pub id: i64,
    pub tenant_id: TenantId,
    pub name: String,
    pub snapshot_id: i64,
    pub variants: Vec<VariantSpec>,
    pub holdout_percent: i64,
    pub seed: String,
    pub target_url: Option<String>,
    pub template_code: Option<String>,
    pub cost_per_part: Fen,
    pub window_days: i64,
    pub status: CampaignStatus,
    pub scheduled_at: i64,
    pub launched_at: Option<i64>,
    pub created_at: i64,
    /// Who asked to send it and who approved it, where the brand's approval size applies.
    pub approval: approval::Approval,
}

crate::platform::text_enum::text_enum! {
    /// A campaign is a `draft` until launched; a launch that stopped part-way stays a draft
    /// with its sends recorded, and launching again sends only to those it missed.
    pub enum CampaignStatus {
        Draft = "draft",
        Launched = "launched",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("campaign {0} not found")]
    NotFound(i64),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error(transparent)]
    Link(#[from] links::LinkError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(
        "the launch was interrupted (the server is shutting down); launching again sends only to those it missed"
    )]
    Interrupted,
    #[error(
        "campaign {id} reaches {audience} people, at or over the brand's approval size of {from}: a second person must approve it in the console (拉新召回) before it is launched"
    )]
    AwaitingApproval { id: i64, audience: i64, from: i64 },
}

impl Refuse for CampaignError {
    fn refusal(&self) -> Refusal {
        match self {
            CampaignError::Invalid { .. } => Refusal::Invalid,
            CampaignError::NotFound(_) => Refusal::NotFound("not_found"),
            CampaignError::Segment(e) => e.refusal(),
            CampaignError::Link(e) => e.refusal(),
            CampaignError::Db(_) => Refusal::Internal,
            CampaignError::Outbox(e) => e.refusal(),
            CampaignError::Interrupted => Refusal::Unavailable("unavailable"),
            CampaignError::AwaitingApproval { .. } => Refusal::Conflict("approval_required"),
        }
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CampaignError {
    CampaignError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The variant a customer gets: the same for the same seed and customer, on every run.
pub fn assign(
    seed: &str,
    customer: CustomerId,
    holdout_percent: i64,
    variants: &[VariantSpec],
) -> String {
    let h = Sha256::digest(format!("{seed}:{customer}").as_bytes());
    let a = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    let b = u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
    if (a % 10_000) < (holdout_percent.clamp(0, 100) as u64) * 100 {
        return CONTROL.to_string();
    }
    let total: u64 = variants.iter().map(|v| v.weight as u64).sum();
    let mut pick = b % total.max(1);
    for v in variants {
        if pick < v.weight as u64 {
            return v.name.clone();
        }
        pick -= v.weight as u64;
    }
    variants.last().map(|v| v.name.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const OK: &str = "【茶小铺】老朋友，您的20元回归券已到账，戳 {link} 领取，拒收请回复R";

    #[test]
    fn content_checks_name_what_is_wrong() {
        let r = check_content(
            "variants[0].content",
            "A",
            OK,
            Some("https://shop.example.cn/"),
            &[],
            30,
        )
        .expect("ok");
        assert_eq!(r.links, 1);
        assert_eq!(r.parts, 1);
        let cases = [
            ("老朋友回来看看，拒收请回复R", "signature"),
            ("【茶小铺】老朋友回来看看", "opt out"),
            (
                "【茶小铺】全网最佳，顶级好茶，拒收请回复R",
                "forbidden word \"最佳\"",
            ),
            (
                "【茶小铺】{name}您好，拒收请回复R",
                "{name} is not a known placeholder",
            ),
            ("【茶小铺】戳 javascript:alert(1) 拒收请回复R", ""),
        ];
        for (text, want) in cases {
            let e = check_content("variants[0].content", "A", text, None, &[], 30);
            if want.is_empty() {
                // Not a URL at all: plain text, allowed.
                assert!(e.is_ok(), "{text}");
                continue;
            }
            let msg = e.expect_err(text).to_string();
            assert!(msg.starts_with("variants[0].content:"), "{msg}");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        let long = format!("【茶小铺】{}拒收请回复R", "字".repeat(500));
        assert!(check_content("c", "A", &long, None, &[], 30).is_err());
        let custom = check_content("c", "A", OK, Some("https://a.cn/"), &["回归券".into()], 30);
        assert!(custom.is_err());
    }

    #[test]
    fn bare_urls_become_links_and_parts_count_them() {
        let p = pieces("【店】看 https://a.cn/x?y=1，拒收请回复R", None).expect("pieces");
        assert_eq!(p[1], Piece::Link("https://a.cn/x?y=1".into()));
        let r = check_content(
            "c",
            "A",
            "【店】看 https://a.cn/x?y=1，拒收请回复R",
            None,
            &[],
            60,
        )
        .expect("ok");
        assert_eq!(r.chars, 5 + 60 + 7);
        assert_eq!(r.parts, 2);
    }

    #[test]
    fn assignment_is_deterministic_and_follows_weights() {
        let vs = vec![
            VariantSpec {
                name: "A".into(),
                content: String::new(),
                weight: 1,
            },
            VariantSpec {
                name: "B".into(),
                content: String::new(),
                weight: 3,
            },
        ];
        let mut counts: HashMap<String, i64> = HashMap::new();
        for c in (0..40_000).map(CustomerId::new) {
            let v = assign("seed", c, 10, &vs);
            assert_eq!(v, assign("seed", c, 10, &vs));
            *counts.entry(v).or_default() += 1;
        }
        let share = |k: &str| counts.get(k).copied().unwrap_or(0) as f64 / 40_000.0;
        assert!((share(CONTROL) - 0.10).abs() < 0.01, "{counts:?}");
        assert!((share("A") - 0.225).abs() < 0.01, "{counts:?}");
        assert!((share("B") - 0.675).abs() < 0.01, "{counts:?}");
        // Another seed reshuffles.
        let moved = (0..1000)
            .map(CustomerId::new)
            .filter(|&c| assign("seed", c, 10, &vs) != assign("other", c, 10, &vs))
            .count();
        assert!(moved > 200);
    }
}
