//! The kinds of identity a customer can be known by (phone, unionid, a marketplace's buyer id
//! …), as rules name them. Normalising and keying the values is the server's (`know::identity`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Phone,
    Unionid,
    /// A WeChat openid, meaningful only with its app id.
    Openid,
    /// A WeCom external contact id.
    ExternalUserid,
    Tmall,
    Jd,
    Douyin,
    Pdd,
    Youzan,
    MemberNo,
    Email,
}

pub const ALL_KINDS: &[IdentityKind] = &[
    IdentityKind::Phone,
    IdentityKind::Unionid,
    IdentityKind::Openid,
    IdentityKind::ExternalUserid,
    IdentityKind::Tmall,
    IdentityKind::Jd,
    IdentityKind::Douyin,
    IdentityKind::Pdd,
    IdentityKind::Youzan,
    IdentityKind::MemberNo,
    IdentityKind::Email,
];

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Phone => "phone",
            IdentityKind::Unionid => "unionid",
            IdentityKind::Openid => "openid",
            IdentityKind::ExternalUserid => "external_userid",
            IdentityKind::Tmall => "tmall",
            IdentityKind::Jd => "jd",
            IdentityKind::Douyin => "douyin",
            IdentityKind::Pdd => "pdd",
            IdentityKind::Youzan => "youzan",
            IdentityKind::MemberNo => "member_no",
            IdentityKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<IdentityKind> {
        ALL_KINDS.iter().copied().find(|k| k.as_str() == s)
    }

    /// The marketplace buyer-id kind for a sales channel, if the channel is a marketplace.
    pub fn buyer_id_of(channel: &str) -> Option<IdentityKind> {
        match channel {
            "tmall" | "taobao" => Some(IdentityKind::Tmall),
            "jd" => Some(IdentityKind::Jd),
            "douyin" => Some(IdentityKind::Douyin),
            "pdd" => Some(IdentityKind::Pdd),
            "youzan" => Some(IdentityKind::Youzan),
            _ => None,
        }
    }
}
