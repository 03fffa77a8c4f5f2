//! The identities a customer can be known by, normalised and keyed for lookup.

use serde::{Deserialize, Serialize};

use super::phone::{Phone, PhoneError};
use crate::platform::crypto::{FieldCipher, TenantLookup};

// The kinds are the rules' vocabulary too, so they live with them in `siyu-audience`.
pub use siyu_audience::identity_kind::{ALL_KINDS, IdentityKind};

/// A normalised identity value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Phone(Phone),
    /// An openid with the app id it belongs to.
    Openid {
        app_id: String,
        openid: String,
    },
    Other(IdentityKind, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("unknown identity kind {0:?}")]
    UnknownKind(String),
    #[error(transparent)]
    Phone(#[from] PhoneError),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} is longer than 128 characters")]
    TooLong(&'static str),
    #[error("{0} contains control characters")]
    Control(&'static str),
    #[error("openid needs its app_id (write openid:APPID/OPENID or give app_id)")]
    OpenidWithoutApp,
    #[error("email {0:?} has no @")]
    Email(String),
    #[error("{0} is masked (contains *) and cannot identify anyone")]
    Masked(&'static str),
    #[error("identity {0:?} is not kind:value")]
    Shorthand(String),
}

fn clean(kind: IdentityKind, v: &str) -> Result<String, IdentityError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(IdentityError::Empty(kind.as_str()));
    }
    if v.chars().count() > 128 {
        return Err(IdentityError::TooLong(kind.as_str()));
    }
    if v.chars().any(char::is_control) {
        return Err(IdentityError::Control(kind.as_str()));
    }
    // Marketplaces mask nicknames (t**8, 张**): thousands of buyers share such a value.
    if v.contains(['*', '＊']) {
        return Err(IdentityError::Masked(kind.as_str()));
    }
    Ok(v.to_owned())
}

impl Identity {
    pub fn new(
        kind: IdentityKind,
        value: &str,
        app_id: Option<&str>,
    ) -> Result<Identity, IdentityError> {
        Ok(match kind {
            IdentityKind::Phone => Identity::Phone(Phone::parse(value)?),
            IdentityKind::Openid => {
                let (app, openid) = match app_id {
                    Some(a) => (a, value),
                    None => value
                        .split_once('/')
                        .ok_or(IdentityError::OpenidWithoutApp)?,
                };
                Identity::Openid {
                    app_id: clean(kind, app)?,
                    openid: clean(kind, openid)?,
                }
            }
            IdentityKind::Email => {
                let e = clean(kind, value)?.to_lowercase();
                if !e.contains('@') {
                    return Err(IdentityError::Email(e));
                }
                Identity::Other(kind, e)
            }
            k => Identity::Other(k, clean(k, value)?),
        })
    }

    /// Parses `kind:value`, e.g. `phone:13800138000` or `openid:wxAPP/oOPENID`.
    pub fn parse_shorthand(s: &str) -> Result<Identity, IdentityError> {
        let (k, v) = s
            .split_once(':')
            .ok_or_else(|| IdentityError::Shorthand(s.to_owned()))?;
        let kind = IdentityKind::parse(k.trim())
            .ok_or_else(|| IdentityError::UnknownKind(k.to_owned()))?;
        Identity::new(kind, v, None)
    }

    pub fn kind(&self) -> IdentityKind {
        match self {
            Identity::Phone(_) => IdentityKind::Phone,
            Identity::Openid { .. } => IdentityKind::Openid,
            Identity::Other(k, _) => *k,
        }
    }

    /// The lookup key stored in `identities.ikey`. Phones are the tenant's keyed hash, never
    /// the number.
    pub fn key(&self, cipher: &FieldCipher, lookup: &TenantLookup) -> KeyedIdentity {
        match self {
            Identity::Phone(p) => KeyedIdentity {
                ikey: format!("phone:{}", lookup.hash(p.as_str())),
                kind: IdentityKind::Phone,
                value_enc: Some(cipher.encrypt(p.as_str())),
            },
            Identity::Openid { app_id, openid } => KeyedIdentity {
                ikey: format!("openid:{app_id}/{openid}"),
                kind: IdentityKind::Openid,
                value_enc: None,
            },
            Identity::Other(k, v) => KeyedIdentity {
                ikey: format!("{}:{v}", k.as_str()),
                kind: *k,
                value_enc: None,
            },
        }
    }

    /// Only the lookup key, without the cost of encrypting (for reads).
    pub fn lookup_key(&self, lookup: &TenantLookup) -> String {
        match self {
            Identity::Phone(p) => format!("phone:{}", lookup.hash(p.as_str())),
            Identity::Openid { app_id, openid } => format!("openid:{app_id}/{openid}"),
            Identity::Other(k, v) => format!("{}:{v}", k.as_str()),
        }
    }
}

/// An identity as stored: its lookup key, kind, and (phones only) the encrypted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedIdentity {
    pub ikey: String,
    pub kind: IdentityKind,
    pub value_enc: Option<String>,
}

/// An identity as the API accepts it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IdentityInput {
    pub kind: String,
    pub value: String,
    #[serde(default)]
    pub app_id: Option<String>,
}

impl IdentityInput {
    pub fn parse(&self) -> Result<Identity, IdentityError> {
        let kind = IdentityKind::parse(&self.kind)
            .ok_or_else(|| IdentityError::UnknownKind(self.kind.clone()))?;
        Identity::new(kind, &self.value, self.app_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::TenantId;

    #[test]
    fn keys_normalise_and_hide_phones() {
        let c = FieldCipher::new(&[1u8; 32]);
        let l = c.lookup(TenantId::new(1));
        let a = Identity::new(IdentityKind::Phone, "+86 138-0013-8000", None).expect("phone");
        let b = Identity::new(IdentityKind::Phone, "138 0013 8000", None).expect("phone");
        assert_eq!(a.key(&c, &l).ikey, b.key(&c, &l).ikey);
        assert!(!a.key(&c, &l).ikey.contains("13800138000"));
        assert_eq!(a.lookup_key(&l), a.key(&c, &l).ikey);
        assert_ne!(
            a.lookup_key(&l),
            a.lookup_key(&c.lookup(TenantId::new(2))),
            "keyed per tenant"
        );
        let e = Identity::new(IdentityKind::Email, " Li.Na@Example.COM ", None).expect("email");
        assert_eq!(e.key(&c, &l).ikey, "email:li.na@example.com");
        assert_eq!(e.lookup_key(&l), e.key(&c, &l).ikey);
        let o = Identity::parse_shorthand("openid:wx1/o1").expect("openid");
        assert_eq!(o.lookup_key(&l), o.key(&c, &l).ikey);
    }

    #[test]
    fn shorthand_and_openid_need_their_parts() {
        assert!(matches!(
            Identity::parse_shorthand("openid:wx1/o1"),
            Ok(Identity::Openid { .. })
        ));
        assert_eq!(
            Identity::parse_shorthand("openid:o1"),
            Err(IdentityError::OpenidWithoutApp)
        );
        assert!(matches!(
            Identity::parse_shorthand("weibo:x"),
            Err(IdentityError::UnknownKind(_))
        ));
        assert!(matches!(
            Identity::parse_shorthand("tmall:"),
            Err(IdentityError::Empty("tmall"))
        ));
        assert!(matches!(
            Identity::parse_shorthand("nothing"),
            Err(IdentityError::Shorthand(_))
        ));
        assert_eq!(
            Identity::parse_shorthand("tmall:t**8"),
            Err(IdentityError::Masked("tmall"))
        );
    }
}
