//! Card scans counted once per address in a window: a landing page refreshed, or fetched in a
//! loop by a script, is one scan and one write, not one per request.

use std::collections::HashMap;
use std::sync::Mutex;

/// Scans of one card from one address within this time are the same scan.
pub const SAME_SCAN_MS: i64 = 10 * 60_000;
/// Remembered (card, address) pairs before the stale ones are dropped.
const REMEMBERED: usize = 100_000;

#[derive(Default)]
pub struct ScanDebounce {
    seen: Mutex<HashMap<(i64, String), i64>>,
}

impl ScanDebounce {
    /// Whether this scan counts: the first from `address` for `card` in [`SAME_SCAN_MS`].
    pub fn first_in_window(&self, card: i64, address: &str, now: i64) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= REMEMBERED {
            seen.retain(|_, at| now - *at < SAME_SCAN_MS);
            // Still mostly fresh: start again rather than sweep on every scan from here on.
            if seen.len() >= REMEMBERED / 2 {
                seen.clear();
            }
        }
        match seen.get(&(card, address.to_owned())) {
            Some(at) if now - at < SAME_SCAN_MS => false,
            _ => {
                seen.insert((card, address.to_owned()), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_scanning_again_soon_is_one_scan() {
        let d = ScanDebounce::default();
        assert!(d.first_in_window(1, "203.0.113.9", 0));
        assert!(!d.first_in_window(1, "203.0.113.9", SAME_SCAN_MS - 1));
        assert!(d.first_in_window(1, "203.0.113.10", 1), "another address");
        assert!(d.first_in_window(2, "203.0.113.9", 1), "another card");
        assert!(
            d.first_in_window(1, "203.0.113.9", SAME_SCAN_MS + 1),
            "later"
        );
    }
}
