//! Field encryption for personal data and keyed hashes to find it again.
//!
//! Phones are stored as AES-256-GCM ciphertext (random 96-bit nonce per value) and looked up by
//! an HMAC-SHA256 of the normalised number, so equality search works without decrypting and a
//! stolen database does not reveal numbers. Each tenant hashes with a key of its own
//! ([`TenantLookup`]): one person's number gives unrelated hashes in two brands, so a copy of
//! the database cannot link customers across brands. Every key derives from the one
//! `SIYU_SECRET_KEY`.

use crate::know::CustomerId;
use crate::platform::TenantId;
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("secret key must be 32 bytes, base64 or hex encoded (got {0} bytes)")]
    KeyLength(usize),
    #[error("secret key is neither base64 nor hex")]
    KeyEncoding,
    #[error("ciphertext is malformed or was encrypted with another key")]
    Decrypt,
}

#[derive(Clone)]
pub struct FieldCipher {
    aead: Aes256Gcm,
    /// The root of every tenant's lookup key.
    lookup_root: [u8; 32],
    /// The one lookup key every tenant shared before 0021; kept to re-key what was hashed with it.
    legacy_lookup_key: [u8; 32],
    /// Server-wide counters that must see one number across brands (a day's codes per phone).
    budget_key: [u8; 32],
    challenge_key: [u8; 32],
    customer_key: [u8; 32],
    code_key: [u8; 32],
}

/// Who a customer token speaks for: the H5 pages and mini-program calls act as this customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerClaim {
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    /// When it was issued (UTC ms): a revocation after this ends it.
    pub issued_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FieldCipher(..)")
    }
}

/// A tenant's key for equality lookups of its personal data (phones, addresses).
#[derive(Clone)]
pub struct TenantLookup {
    tenant: TenantId,
    /// Keyed once: each hash clones the state instead of keying HMAC again.
    mac: HmacSha256,
}

impl std::fmt::Debug for TenantLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TenantLookup({})", self.tenant)
    }
}

impl TenantLookup {
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// Keyed hash for equality lookup (hex, 128 bits kept: collisions are out of reach and
    /// keys stay short in indexes).
    pub fn hash(&self, value: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(value.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

fn short_mac(key: &[u8; 32], value: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(value.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// Compares secrets without an early exit, so the time taken does not reveal how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses a 32-byte secret from base64 (standard or URL-safe) or hex.
pub fn parse_secret(text: &str) -> Result<[u8; 32], CryptoError> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).map_err(|_| CryptoError::KeyEncoding)?
    } else {
        STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t))
            .map_err(|_| CryptoError::KeyEncoding)?
    };
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| CryptoError::KeyLength(bytes.len()))
}

/// A fresh random secret, base64 encoded.
pub fn generate_secret() -> String {
    let mut k = [0u8; 32];
    rand::rng().fill_bytes(&mut k);
    STANDARD.encode(k)
}

/// A random token of `n` bytes, URL-safe base64 (API keys, session ids).
pub fn random_token(n: usize) -> String {
    let mut k = vec![0u8; n];
    rand::rng().fill_bytes(&mut k);
    URL_SAFE_NO_PAD.encode(k)
}

/// SHA-256 hex of a high-entropy token (API keys, session ids): fast and sufficient, since the
/// token itself is 256 random bits.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl FieldCipher {
    pub fn new(secret: &[u8; 32]) -> Self {
        let enc = derive(secret, b"siyu/field-encryption/v1");
        let aead = Aes256Gcm::new_from_slice(&enc).unwrap_or_else(|_| unreachable!("32-byte key"));
        FieldCipher {
            aead,
            lookup_root: derive(secret, b"siyu/lookup-hash/v2"),
            legacy_lookup_key: derive(secret, b"siyu/lookup-hash/v1"),
            budget_key: derive(secret, b"siyu/budget-hash/v1"),
            challenge_key: derive(secret, b"siyu/human-check/v1"),
            customer_key: derive(secret, b"siyu/customer-token/v2"),
            code_key: derive(secret, b"siyu/one-time-code/v1"),
        }
    }

    /// Encrypts a value as `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn encrypt(&self, plain: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let ct = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_else(|_| unreachable!("AES-GCM encrypts any input under 64 GiB"));
        let mut out = Vec::with_capacity(12 + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        format!("v1:{}", STANDARD.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let b64 = stored.strip_prefix("v1:").ok_or(CryptoError::Decrypt)?;
        let raw = STANDARD.decode(b64).map_err(|_| CryptoError::Decrypt)?;
        if raw.len() < 12 + 16 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Decrypt)
    }

    /// The tenant's own lookup key. Derive it once per batch: each derivation is an HMAC.
    pub fn lookup(&self, tenant: TenantId) -> TenantLookup {
        let key = derive(&self.lookup_root, format!("tenant:{tenant}").as_bytes());
        TenantLookup {
            tenant,
            mac: <HmacSha256 as Mac>::new_from_slice(&key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key")),
        }
    }

    /// The hash every tenant shared before lookups were keyed per tenant (migration 0021).
    pub fn legacy_lookup_hash(&self, value: &str) -> String {
        short_mac(&self.legacy_lookup_key, value)
    }

    /// A number's hash for the server's own budgets across brands (codes per phone per day);
    /// stored only in those counters, which last a day.
    pub fn budget_hash(&self, value: &str) -> String {
        short_mac(&self.budget_key, value)
    }

    /// The MAC of a human-check challenge.
    pub fn challenge_mac(&self, body: &str) -> String {
        short_mac(&self.challenge_key, body)
    }

    /// The six-digit one-time code for `seed`: derived when the code is sent and never stored,
    /// so the outbox and the SMS log hold only a placeholder and `otp_codes` only a hash.
    pub fn one_time_code(&self, seed: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.code_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        mac.update(seed.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut n = [0u8; 8];
        n.copy_from_slice(&bytes[..8]);
        format!("{:06}", u64::from_be_bytes(n) % 1_000_000)
    }

    /// A token that lets a customer's own pages (H5, mini-program) act for them until
    /// `expires_at`: `tenant.customer.issued.expires.mac`, the MAC being 128 bits of
    /// HMAC-SHA256. The signature is checked here; whether the customer has been signed out
    /// since is `platform::customer_sessions`' question.
    pub fn customer_token(&self, c: CustomerClaim) -> String {
        let body = format!(
            "{}.{}.{}.{}",
            c.tenant_id, c.customer_id, c.issued_at, c.expires_at
        );
        let mac = self.customer_mac(&body);
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(&mac[..16]))
    }

    /// The claim of a genuine, unexpired token; `None` for anything else.
    pub fn verify_customer_token(&self, token: &str, now: i64) -> Option<CustomerClaim> {
        let (body, mac) = token.rsplit_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if mac.len() != 16 {
            return None;
        }
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.customer_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        m.update(body.as_bytes());
        // Constant-time comparison of the truncated MAC.
        m.verify_truncated_left(&mac).ok()?;
        let mut parts = body.split('.');
        let claim = CustomerClaim {
            tenant_id: parts.next()?.parse().ok()?,
            customer_id: parts.next()?.parse().ok()?,
            issued_at: parts.next()?.parse().ok()?,
            expires_at: parts.next()?.parse().ok()?,
        };
        if parts.next().is_some() || claim.expires_at <= now {
            return None;
        }
        Some(claim)
    }

    fn customer_mac(&self, body: &str) -> Vec<u8> {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.customer_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        m.update(body.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> FieldCipher {
        FieldCipher::new(&[7u8; 32])
    }

    #[test]
    fn encrypt_round_trips_and_is_randomised() {
        let c = cipher();
        let a = c.encrypt("13800138000");
        let b = c.encrypt("13800138000");
        assert_ne!(a, b, "same plaintext must not give the same ciphertext");
        assert!(!a.contains("13800138000"));
        assert_eq!(c.decrypt(&a).ok().as_deref(), Some("13800138000"));
    }

    #[test]
    fn decrypt_rejects_tampering_and_other_keys() {
        let c = cipher();
        let a = c.encrypt("13800138000");
        let other = FieldCipher::new(&[8u8; 32]);
        assert!(other.decrypt(&a).is_err());
        let mut tampered = a.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(c.decrypt(&String::from_utf8_lossy(&tampered)).is_err());
        assert!(c.decrypt("v1:abc").is_err());
        assert!(c.decrypt("plain").is_err());
    }

    #[test]
    fn lookup_hash_is_stable_and_keyed_per_tenant() {
        let c = cipher();
        let one = c.lookup(TenantId::new(1));
        assert_eq!(
            one.hash("13800138000"),
            c.lookup(TenantId::new(1)).hash("13800138000")
        );
        assert_ne!(
            one.hash("13800138000"),
            c.lookup(TenantId::new(2)).hash("13800138000")
        );
        assert_ne!(
            one.hash("13800138000"),
            FieldCipher::new(&[8u8; 32])
                .lookup(TenantId::new(1))
                .hash("13800138000")
        );
        assert_ne!(one.hash("13800138000"), c.legacy_lookup_hash("13800138000"));
        assert_ne!(one.hash("13800138000"), c.budget_hash("13800138000"));
        assert_eq!(one.hash("x").len(), 32);
        // The pre-keyed state gives what keying HMAC afresh gives.
        let key = derive(&c.lookup_root, b"tenant:1");
        assert_eq!(one.hash("13800138000"), short_mac(&key, "13800138000"));
    }

    #[test]
    fn customer_tokens_verify_only_when_genuine_and_fresh() {
        let c = cipher();
        let claim = CustomerClaim {
            tenant_id: TenantId::new(3),
            customer_id: CustomerId::new(42),
            issued_at: 0,
            expires_at: 1_000,
        };
        let t = c.customer_token(claim);
        assert_eq!(c.verify_customer_token(&t, 999), Some(claim));
        assert_eq!(c.verify_customer_token(&t, 1_000), None, "expired");
        assert_eq!(
            FieldCipher::new(&[8u8; 32]).verify_customer_token(&t, 0),
            None
        );
        let forged = t.replacen("3.42", "3.43", 1);
        assert_eq!(c.verify_customer_token(&forged, 0), None);
        let (body, _) = t.rsplit_once('.').expect("mac");
        assert_eq!(
            c.verify_customer_token(&format!("{body}.AA"), 0),
            None,
            "short MAC"
        );
        for junk in ["", ".", "a.b.c.d", "3.42.0.1000", "3.42.0.1000.!!"] {
            assert_eq!(c.verify_customer_token(junk, 0), None, "{junk:?}");
        }
    }

    #[test]
    fn secrets_parse_from_base64_and_hex() {
        let s = generate_secret();
        assert!(parse_secret(&s).is_ok());
        assert!(parse_secret(&"ab".repeat(32)).is_ok());
        assert!(matches!(
            parse_secret("c2hvcnQ="),
            Err(CryptoError::KeyLength(5))
        ));
        assert!(parse_secret("!!!").is_err());
    }
}
