//! Generated statement text kept for reuse, bounded by its bytes, the text used longest ago
//! let go first; and the three caches (`VALUES` lists, `IN` lists, SQLite respellings).

use std::sync::Arc;

/// Statement text generated for bulk statements, kept because they repeat their shapes: every
/// full batch of an import is the same 32,000 placeholders, and writing them out and
/// respelling them for SQLite took a fifth of the writers' own time (docs/BENCHMARKS.md).
/// Bounded by the bytes it holds; the text used longest ago goes first.
pub(super) struct TextCache<K>(pub(super) std::sync::LazyLock<std::sync::Mutex<Kept<K>>>);

pub(super) struct Kept<K> {
    pub(super) texts: foldhash::HashMap<K, KeptText>,
    pub(super) bytes: usize,
    pub(super) uses: u64,
}

pub(super) struct KeptText {
    pub(super) text: Arc<str>,
    pub(super) used: u64,
    pub(super) bytes: usize,
}

impl<K> Default for Kept<K> {
    fn default() -> Self {
        Kept {
            texts: Default::default(),
            bytes: 0,
            uses: 0,
        }
    }
}

/// The text of the largest statements a few times over (a full batch is about 200 KiB).
pub(super) const TEXT_CACHE_BYTES: usize = 8 << 20;

impl<K: std::hash::Hash + Eq + Clone> TextCache<K> {
    pub(super) const fn new() -> Self {
        TextCache(std::sync::LazyLock::new(Default::default))
    }
}

pub(super) static VALUES_TEXT: TextCache<(usize, usize, usize)> = TextCache::new();

pub(super) static LIST_TEXT: TextCache<(usize, usize)> = TextCache::new();

pub(super) static SQLITE_TEXT: TextCache<Box<str>> = TextCache::new();

impl<K: std::hash::Hash + Eq + Clone> TextCache<K> {
    /// The text kept for `key`, or the one `make` writes (with the key to keep it under and the
    /// bytes that key holds).
    pub(super) fn get_or_make<Q>(
        &self,
        key: &Q,
        make: impl FnOnce() -> (K, usize, String),
    ) -> Arc<str>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        {
            let mut kept = lock();
            kept.uses += 1;
            let now = kept.uses;
            if let Some(k) = kept.texts.get_mut(key) {
                k.used = now;
                return k.text.clone();
            }
        }
        let (key, key_bytes, text) = make();
        let text: Arc<str> = text.into();
        let bytes = key_bytes + text.len();
        if bytes > TEXT_CACHE_BYTES / 4 {
            return text;
        }
        let mut kept = lock();
        while kept.bytes + bytes > TEXT_CACHE_BYTES {
            let Some(oldest) = kept
                .texts
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            if let Some(gone) = kept.texts.remove::<K>(&oldest) {
                kept.bytes -= gone.bytes;
            }
        }
        let used = kept.uses;
        kept.bytes += bytes;
        let entry = KeptText {
            text: text.clone(),
            used,
            bytes,
        };
        if let Some(raced) = kept.texts.insert(key, entry) {
            kept.bytes -= raced.bytes; // another thread wrote the same text meanwhile
        }
        text
    }
}
