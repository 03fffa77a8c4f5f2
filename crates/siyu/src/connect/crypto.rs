//! WeCom callback crypto (the protocol of WeCom's `WXBizMsgCrypt`), both ways.
//!
//! - `msg_signature` = hex(SHA-1(concat(sorted([token, timestamp, nonce, encrypt])))), compared
//!   in constant time.
//! - AES-256-CBC; the key is base64(EncodingAESKey + "="), the IV its first 16 bytes.
//! - Plaintext = 16 random bytes ‖ message length (4 bytes, big-endian) ‖ message ‖ receiveid,
//!   padded PKCS#7 to a multiple of **32** bytes (not the cipher's 16), so padding is checked by
//!   hand.
//! - The receiveid must be the corp id; a timestamp outside the window is refused.
//!
//! Every check returns an error; no input, however malformed, panics.

use aes::Aes256;
use base64::Engine;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use sha1::{Digest, Sha1};

use crate::platform::crypto::constant_time_eq;

/// Callbacks whose timestamp is further than this from now are refused (replays).
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// WeCom's padding block.
const BLOCK: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CallbackError {
    #[error("EncodingAESKey must be 43 base64 characters that decode to 32 bytes")]
    AesKey,
    #[error("msg_signature does not match")]
    Signature,
    #[error("timestamp {0:?} is not a number of seconds")]
    TimestampFormat(String),
    #[error("timestamp {0} is outside ±{TIMESTAMP_WINDOW_SECS} s of now")]
    TimestampWindow(i64),
    #[error("ciphertext is not base64")]
    Base64,
    #[error("ciphertext length {0} is not a positive multiple of 32")]
    CipherLength(usize),
    #[error("padding is invalid")]
    Padding,
    #[error("message length field {0} does not fit the plaintext")]
    MessageLength(usize),
    #[error("message is not UTF-8")]
    Utf8,
    #[error("receiveid {0:?} is not this corp's")]
    ReceiveId(String),
    #[error("{0}")]
    Body(String),
}

/// One corp's callback settings.
#[derive(Clone)]
pub struct CallbackCrypto {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for CallbackCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackCrypto")
            .field("receive_id", &self.receive_id)
            .finish_non_exhaustive()
    }
}

fn key_engine() -> GeneralPurpose {
    // 43 characters + "=" leave 2 spare bits; WeCom's keys do not always zero them.
    GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    )
}

impl CallbackCrypto {
    pub fn new(
        token: &str,
        encoding_aes_key: &str,
        receive_id: &str,
    ) -> Result<CallbackCrypto, CallbackError> {
        if encoding_aes_key.len() != 43 {
            return Err(CallbackError::AesKey);
        }
        let bytes = key_engine()
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CallbackError::AesKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CallbackError::AesKey)?;
        Ok(CallbackCrypto {
            token: token.to_owned(),
            key,
            receive_id: receive_id.to_owned(),
        })
    }

    pub fn receive_id(&self) -> &str {
        &self.receive_id
    }

    /// hex(SHA-1) over the four values sorted as byte strings and concatenated.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        parts.sort_unstable();
        let mut h = Sha1::new();
        for p in parts {
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())
    }

    fn check_signature(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), CallbackError> {
        let want = self.signature(timestamp, nonce, encrypt);
        if constant_time_eq(want.as_bytes(), msg_signature.trim().as_bytes()) {
            Ok(())
        } else {
            Err(CallbackError::Signature)
        }
    }

    /// Checks signature and timestamp, then decrypts: the whole of what a callback must pass.
    pub fn open(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
        now_ms: i64,
    ) -> Result<String, CallbackError> {
        self.check_signature(msg_signature, timestamp, nonce, encrypt)?;
        check_timestamp(timestamp, now_ms)?;
        self.decrypt(encrypt)
    }

    /// Decrypts a ciphertext and checks its padding, length and receiveid.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CallbackError> {
        let mut buf = base64::engine::general_purpose::STANDARD
            .decode(encrypt.trim())
            .map_err(|_| CallbackError::Base64)?;
        if buf.is_empty() || !buf.len().is_multiple_of(BLOCK) {
            return Err(CallbackError::CipherLength(buf.len()));
        }
        let dec = cbc::Decryptor::<Aes256>::new_from_slices(&self.key, &self.key[..16])
            .map_err(|_| CallbackError::AesKey)?;
        let plain = dec
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CallbackError::Padding)?;
        let pad = usize::from(*plain.last().ok_or(CallbackError::Padding)?);
        if pad == 0 || pad > BLOCK || pad > plain.len() {
            return Err(CallbackError::Padding);
        }
        let body_end = plain.len() - pad;
        if plain[body_end..].iter().any(|&b| usize::from(b) != pad) {
            return Err(CallbackError::Padding);
        }
        let body = &plain[..body_end];
        if body.len() < 20 {
            return Err(CallbackError::MessageLength(0));
        }
        let len = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
        let rest = &body[20..];
        if len > rest.len() {
            return Err(CallbackError::MessageLength(len));
        }
        let (msg, receive_id) = rest.split_at(len);
        if !constant_time_eq(receive_id, self.receive_id.as_bytes()) {
            return Err(CallbackError::ReceiveId(
                String::from_utf8_lossy(receive_id).into_owned(),
            ));
        }
        String::from_utf8(msg.to_vec()).map_err(|_| CallbackError::Utf8)
    }

    /// Encrypts a message with the given 16 random bytes (tests pass fixed ones).
    pub fn encrypt_with(&self, msg: &str, random: [u8; 16]) -> String {
        let mut plain = Vec::with_capacity(msg.len() + self.receive_id.len() + 20 + BLOCK);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.receive_id.as_bytes());
        let pad = BLOCK - plain.len() % BLOCK;
        plain.resize(plain.len() + pad, pad as u8);
        let n = plain.len();
        let enc = cbc::Encryptor::<Aes256>::new_from_slices(&self.key, &self.key[..16])
            .expect("a 32-byte key and a 16-byte IV are the sizes AES-256-CBC takes");
        let out = enc
            .encrypt_padded_mut::<NoPadding>(&mut plain, n)
            .expect("the plaintext was padded to whole blocks above");
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn encrypt(&self, msg: &str) -> String {
        self.encrypt_with(msg, rand::random())
    }

    /// An encrypted passive reply (or a callback body, as a fake WeCom sends it).
    pub fn seal(&self, msg: &str, timestamp: &str, nonce: &str) -> Sealed {
        let encrypt = self.encrypt(msg);
        let msg_signature = self.signature(timestamp, nonce, &encrypt);
        Sealed {
            xml: format!(
                "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{msg_signature}]]></MsgSignature>\
                 <TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
            ),
            encrypt,
            msg_signature,
        }
    }
}

/// An encrypted message ready to send.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub xml: String,
    pub encrypt: String,
    pub msg_signature: String,
}

/// Seconds since the epoch, within the window of now.
pub fn check_timestamp(timestamp: &str, now_ms: i64) -> Result<i64, CallbackError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| CallbackError::TimestampFormat(timestamp.chars().take(20).collect()))?;
    let off = ts
        .checked_mul(1000)
        .map(|ms| ms.abs_diff(now_ms))
        .unwrap_or(u64::MAX);
    if off > (TIMESTAMP_WINDOW_SECS * 1000) as u64 {
        return Err(CallbackError::TimestampWindow(ts));
    }
    Ok(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The sample values of WeCom's documentation ("加解密方案说明", developer.work.weixin.qq.com
    // document 90968) and of the official WXBizMsgCrypt SDK samples.
    const TOKEN: &str = "QDG6eK";
    const CORP: &str = "wx5823bf96d3bd56c7";
    const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
    const ECHO: &str =
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
    const MSG: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

    fn sample() -> CallbackCrypto {
        CallbackCrypto::new(TOKEN, KEY, CORP).expect("sample key")
    }

    #[test]
    fn url_verification_matches_the_documented_sample() {
        let c = sample();
        let echo = c
            .open(
                "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                "1409659589",
                "263014780",
                ECHO,
                1_409_659_589_000,
            )
            .expect("sample echostr");
        assert_eq!(echo, "1616140317555161061");
    }

    #[test]
    fn message_decryption_matches_the_documented_sample() {
        let c = sample();
        assert_eq!(
            c.signature("1409659813", "1372623149", MSG),
            "477715d11cdb4164915debcba66cb864d751f3e6"
        );
        let xml = c
            .open(
                "477715d11cdb4164915debcba66cb864d751f3e6",
                "1409659813",
                "1372623149",
                MSG,
                1_409_659_813_000,
            )
            .expect("sample message");
        assert!(
            xml.contains("<Content><![CDATA[hello]]></Content>"),
            "{xml}"
        );
        assert!(xml.contains("<MsgId>4561255354251345929</MsgId>"), "{xml}");
    }

    #[test]
    fn wrong_signature_receiver_and_stale_timestamps_are_refused() {
        let c = sample();
        let now = 1_409_659_813_000;
        assert_eq!(
            c.open(&"0".repeat(40), "1409659813", "1372623149", MSG, now),
            Err(CallbackError::Signature)
        );
        let other = CallbackCrypto::new(TOKEN, KEY, "ww_other_corp").expect("key");
        assert!(matches!(
            other.open(
                "477715d11cdb4164915debcba66cb864d751f3e6",
                "1409659813",
                "1372623149",
                MSG,
                now
            ),
            Err(CallbackError::ReceiveId(id)) if id == CORP
        ));
        assert_eq!(
            c.open(
                "477715d11cdb4164915debcba66cb864d751f3e6",
                "1409659813",
                "1372623149",
                MSG,
                now + 301_000
            ),
            Err(CallbackError::TimestampWindow(1_409_659_813))
        );
        assert!(CallbackCrypto::new(TOKEN, "short", CORP).is_err());
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_and_pads_to_32() {
        let c = sample();
        for msg in ["", "a", "欢迎", &"x".repeat(1000)] {
            let e = c.encrypt_with(msg, [7; 16]);
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&e)
                .expect("b64");
            assert_eq!(raw.len() % 32, 0);
            assert_eq!(c.decrypt(&e).expect("round trip"), msg);
        }
        let sealed = c.seal("<xml/>", "1409659813", "n1");
        assert_eq!(
            c.open(
                &sealed.msg_signature,
                "1409659813",
                "n1",
                &sealed.encrypt,
                1_409_659_813_000
            )
            .expect("open sealed"),
            "<xml/>"
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn random_ciphertexts_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let c = sample();
                let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                let _ = c.decrypt(&b64);
                let _ = c.decrypt(&String::from_utf8_lossy(&bytes));
            }

            #[test]
            fn tampered_samples_are_refused_not_panicked(i in 0usize..300, b in any::<u8>()) {
                let c = sample();
                let mut raw = base64::engine::general_purpose::STANDARD.decode(MSG).expect("b64");
                let i = i % raw.len();
                prop_assume!(raw[i] != b);
                raw[i] = b;
                let tampered = base64::engine::general_purpose::STANDARD.encode(&raw);
                // Whatever the block, the result is an error or a different message, never a panic;
                // and the signature check refuses it before decryption in `open`.
                prop_assert!(c.open("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", &tampered, 1_409_659_813_000).is_err());
                let _ = c.decrypt(&tampered);
            }
        }
    }
}
