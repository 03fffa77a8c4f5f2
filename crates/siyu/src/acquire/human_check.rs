//! The human check before a public page may have a code texted: a small proof of work. The page
//! asks for a challenge, and its script finds a number that, hashed with the challenge and the
//! phone, gives a SHA-256 starting with [`HumanCheck::bits`] zero bits (about 65,000 tries at the
//! default 16: a moment on a phone, a cost per code to a script that pumps SMS). The challenge is
//! signed and lives five minutes, so the server keeps nothing; binding the phone means one solve
//! texts one number, and the per-number budgets stop replays.

use sha2::{Digest, Sha256};

use crate::platform::crypto::{FieldCipher, constant_time_eq, random_token};
use crate::platform::refusal::{Refusal, Refuse};

/// How long a challenge may be solved for.
pub const CHALLENGE_MS: i64 = 5 * 60_000;
/// Leading zero bits asked for unless `sms.otp_work_bits` says otherwise.
pub const DEFAULT_BITS: u32 = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HumanCheckError {
    #[error("human_check: required (ask GET /h5/v1/human-check and send challenge and nonce)")]
    Missing,
    #[error("human_check: the challenge is not ours or has expired; ask for a new one")]
    Challenge,
    #[error("human_check: the nonce does not solve the challenge for this phone")]
    Unsolved,
}

impl Refuse for HumanCheckError {
    fn refusal(&self) -> Refusal {
        Refusal::Rejected("human_check")
    }
}

#[derive(Clone)]
pub struct HumanCheck {
    cipher: FieldCipher,
    bits: u32,
}

impl std::fmt::Debug for HumanCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HumanCheck({} bits)", self.bits)
    }
}

impl HumanCheck {
    pub fn new(cipher: FieldCipher, bits: u32) -> HumanCheck {
        HumanCheck {
            cipher,
            bits: bits.min(32),
        }
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// A fresh challenge: `issued.random.mac`.
    pub fn challenge(&self, now: i64) -> String {
        let body = format!("{now}.{}", random_token(12));
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// Whether `nonce` solves a genuine, fresh challenge for `phone`.
    pub fn verify(
        &self,
        challenge: Option<&str>,
        nonce: Option<&str>,
        phone: &str,
        now: i64,
    ) -> Result<(), HumanCheckError> {
        let (Some(challenge), Some(nonce)) = (challenge, nonce) else {
            return Err(HumanCheckError::Missing);
        };
        let (body, mac) = challenge
            .rsplit_once('.')
            .ok_or(HumanCheckError::Challenge)?;
        if !constant_time_eq(self.mac(body).as_bytes(), mac.as_bytes()) {
            return Err(HumanCheckError::Challenge);
        }
        let issued: i64 = body
            .split('.')
            .next()
            .and_then(|t| t.parse().ok())
            .ok_or(HumanCheckError::Challenge)?;
        // A minute's grace for servers whose clocks differ.
        if !(now - CHALLENGE_MS..=now + 60_000).contains(&issued) {
            return Err(HumanCheckError::Challenge);
        }
        if nonce.len() > 20 || zero_bits(&work(challenge, phone, nonce)) < self.bits {
            return Err(HumanCheckError::Unsolved);
        }
        Ok(())
    }

    fn mac(&self, body: &str) -> String {
        self.cipher.challenge_mac(body)
    }
}

/// SHA-256 of `challenge:phone:nonce`, as the page's script computes it.
fn work(challenge: &str, phone: &str, nonce: &str) -> [u8; 32] {
    Sha256::digest(format!("{challenge}:{phone}:{nonce}").as_bytes()).into()
}

fn zero_bits(hash: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in hash {
        n += b.leading_zeros();
        if *b != 0 {
            break;
        }
    }
    n
}

/// Finds the nonce the page's script would: the first number that solves the challenge. For
/// tests and benchmarks, which ask for codes as a page does.
pub fn solve(challenge: &str, phone: &str, bits: u32) -> String {
    let prefix = Sha256::new_with_prefix(format!("{challenge}:{phone}:").as_bytes());
    let mut digits = itoa_buffer();
    for n in 0u64.. {
        let text = digits.format(n);
        let hash: [u8; 32] = prefix
            .clone()
            .chain_update(text.as_bytes())
            .finalize()
            .into();
        if zero_bits(&hash) >= bits {
            return text.to_owned();
        }
    }
    unreachable!("some number below 2^64 has the zero bits asked for")
}

/// Decimal digits of a number without an allocation per try.
struct Digits([u8; 20]);

fn itoa_buffer() -> Digits {
    Digits([0; 20])
}

impl Digits {
    fn format(&mut self, mut n: u64) -> &str {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        std::str::from_utf8(&self.0[i..]).unwrap_or("0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> HumanCheck {
        HumanCheck::new(FieldCipher::new(&[3u8; 32]), 12)
    }

    #[test]
    fn a_solved_fresh_challenge_passes_for_its_phone_only() {
        let h = check();
        let now = 1_800_000_000_000;
        let c = h.challenge(now);
        let nonce = solve(&c, "13800138000", 12);
        assert_eq!(
            h.verify(Some(&c), Some(&nonce), "13800138000", now + 1_000),
            Ok(())
        );
        assert_eq!(
            h.verify(Some(&c), Some(&nonce), "13900139000", now),
            Err(HumanCheckError::Unsolved),
            "another phone needs its own solve"
        );
        assert_eq!(
            h.verify(
                Some(&c),
                Some(&nonce),
                "13800138000",
                now + CHALLENGE_MS + 1
            ),
            Err(HumanCheckError::Challenge),
            "expired"
        );
        let forged = c.replacen(&now.to_string(), &(now + 5).to_string(), 1);
        assert_eq!(
            h.verify(Some(&forged), Some(&nonce), "13800138000", now),
            Err(HumanCheckError::Challenge)
        );
        let other = HumanCheck::new(FieldCipher::new(&[4u8; 32]), 12);
        assert_eq!(
            other.verify(Some(&c), Some(&nonce), "13800138000", now),
            Err(HumanCheckError::Challenge),
            "another server's secret"
        );
        assert_eq!(
            h.verify(None, Some(&nonce), "13800138000", now),
            Err(HumanCheckError::Missing)
        );
    }

    #[test]
    fn zero_bits_are_counted_from_the_first_byte() {
        let mut h = [0xffu8; 32];
        assert_eq!(zero_bits(&h), 0);
        h[0] = 0;
        h[1] = 0x1f;
        assert_eq!(zero_bits(&h), 11);
        assert_eq!(zero_bits(&[0u8; 32]), 256);
    }

    #[test]
    fn the_solver_agrees_with_the_check_and_counts_digits_plainly() {
        let mut d = itoa_buffer();
        for n in [0u64, 7, 10, 1_234_567, u64::MAX] {
            assert_eq!(d.format(n), n.to_string());
        }
        let nonce = solve("x", "13800138000", 8);
        assert!(zero_bits(&work("x", "13800138000", &nonce)) >= 8);
    }
}
