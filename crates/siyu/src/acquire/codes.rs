//! Short unguessable codes: tracking links (8 characters of base 62, 47 bits) and package-card
//! codes (10 characters of Crockford base 32 plus a check character from a weighted sum modulo
//! 37, the construction of ISO 7064's pure systems, so a
//! code typed with one wrong character, or two neighbours swapped, is caught before lookup).

use std::collections::HashSet;

use rand::Rng;

use crate::platform::db::{DbError, Reader, Value};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Crockford's base 32: no I, L, O or U, so nothing reads as 1, 0 or a rude word.
const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

pub const LINK_CODE_LEN: usize = 8;
pub const CARD_CODE_LEN: usize = 11;

pub fn link_code() -> String {
    let mut r = rand::rng();
    (0..LINK_CODE_LEN)
        .map(|_| BASE62[r.random_range(0..BASE62.len())] as char)
        .collect()
}

/// A first-party visitor id for the `sy_v` cookie: 16 characters of base 62 (95 bits).
pub fn visitor_id() -> String {
    let mut r = rand::rng();
    (0..16)
        .map(|_| BASE62[r.random_range(0..BASE62.len())] as char)
        .collect()
}

pub fn is_link_code(s: &str) -> bool {
    s.len() == LINK_CODE_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Weight of position `i` (check character included): 2^(i+1) mod 37. 2 generates all of
/// 1..36 modulo the prime 37, so the 11 weights are distinct and non-zero, and neighbours
/// differ: a wrong character changes the sum by (a−b)·w ≢ 0, a swap by (a−b)·(w_i − w_{i+1})
/// ≢ 0 (mod 37), since character values are below 37.
fn weight(i: usize) -> u32 {
    (0..=i).fold(1, |w, _| w * 2 % 37)
}

fn value(c: char) -> Option<u32> {
    CROCKFORD
        .iter()
        .position(|&a| a as char == c)
        .map(|v| v as u32)
}

/// The check value (0–36) that makes the weighted sum of the whole code ≡ 0 (mod 37).
fn check_value(body: &str) -> Option<u32> {
    let mut sum = 0;
    for (i, c) in body.chars().enumerate() {
        sum = (sum + value(c)? * weight(i)) % 37;
    }
    let w = weight(body.chars().count());
    (0..37).find(|c| (sum + c * w).is_multiple_of(37))
}

/// A new card code: 10 random Crockford characters and the check character.
pub fn card_code() -> String {
    let mut r = rand::rng();
    loop {
        let body: String = (0..CARD_CODE_LEN - 1)
            .map(|_| CROCKFORD[r.random_range(0..CROCKFORD.len())] as char)
            .collect();
        // The check value ranges over 0–36; draw again when it has no Crockford character
        // (5 in 37), so every character of a code can be typed from the card.
        if let Some(check) = check_value(&body).and_then(|v| CROCKFORD.get(v as usize)) {
            return format!("{body}{}", *check as char);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardCodeError {
    #[error("a card code has {CARD_CODE_LEN} characters; this one has {0}")]
    Length(usize),
    #[error("{0:?} is not a character used in card codes")]
    Character(char),
    #[error("the code does not check: a character was mistyped")]
    Check,
}

/// Normalises what a customer typed (case, spaces, dashes, the letters Crockford reads as
/// digits) and checks it.
pub fn parse_card_code(typed: &str) -> Result<String, CardCodeError> {
    let mut s = String::with_capacity(CARD_CODE_LEN);
    for c in typed.chars() {
        if c.is_whitespace() || c == '-' {
            continue;
        }
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !CROCKFORD.contains(&(c as u8)) || !c.is_ascii() {
            return Err(CardCodeError::Character(c));
        }
        s.push(c);
    }
    if s.len() != CARD_CODE_LEN {
        return Err(CardCodeError::Length(s.len()));
    }
    let (body, check) = s.split_at(CARD_CODE_LEN - 1);
    let given = check.chars().next().and_then(value);
    if given.is_none() || check_value(body) != given {
        return Err(CardCodeError::Check);
    }
    Ok(s)
}

/// `n` codes drawn by `draw` that no row of `table` (`links` or `cards`) holds yet and no two
/// alike. A collision is rare (47 or 50 random bits) but grows with every batch stored, so it
/// is drawn again here rather than failing a whole batch on the UNIQUE index.
pub async fn unused(
    mut from: Reader<'_>,
    table: &'static str,
    n: usize,
    draw: fn() -> String,
) -> Result<Vec<String>, DbError> {
    let mut codes: Vec<String> = (0..n).map(|_| draw()).collect();
    let mut check: Vec<usize> = (0..n).collect();
    loop {
        let mut bad = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(n);
        for (i, c) in codes.iter().enumerate() {
            if !seen.insert(c.as_str()) {
                bad.push(i);
            }
        }
        // Only codes new since the last look need asking about.
        let taken: HashSet<String> = from
            .fetch_in::<(String,)>(
                &format!("SELECT code FROM {table} WHERE code"),
                &[],
                check
                    .iter()
                    .map(|&i| Value::from(codes[i].clone()))
                    .collect(),
            )
            .await?
            .into_iter()
            .map(|(c,)| c)
            .collect();
        bad.extend(check.iter().copied().filter(|&i| taken.contains(&codes[i])));
        bad.sort_unstable();
        bad.dedup();
        if bad.is_empty() {
            break;
        }
        for &i in &bad {
            codes[i] = draw();
        }
        check = bad;
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_codes_check() {
        for _ in 0..1000 {
            let c = card_code();
            assert_eq!(parse_card_code(&c), Ok(c.clone()));
            assert!(is_link_code(&link_code()));
        }
        assert_eq!(parse_card_code("abc"), Err(CardCodeError::Length(3)));
    }

    proptest! {
        /// Every single wrong character is caught.
        #[test]
        fn one_wrong_character_is_caught(pos in 0..CARD_CODE_LEN, sub in 0..CROCKFORD.len()) {
            let c = card_code();
            let mut b: Vec<u8> = c.clone().into_bytes();
            prop_assume!(b[pos] != CROCKFORD[sub]);
            b[pos] = CROCKFORD[sub];
            let typo = String::from_utf8(b).expect("ascii");
            prop_assert!(parse_card_code(&typo).is_err());
        }

        /// Swapping two different neighbours is caught.
        #[test]
        fn a_swap_is_caught(pos in 0..CARD_CODE_LEN - 1) {
            let c = card_code();
            let mut b: Vec<u8> = c.into_bytes();
            prop_assume!(b[pos] != b[pos + 1]);
            b.swap(pos, pos + 1);
            let typo = String::from_utf8(b).expect("ascii");
            prop_assert!(parse_card_code(&typo).is_err());
        }
    }
}
