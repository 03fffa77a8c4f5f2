//! SMS providers' delivery reports and replies from any bytes (the provider and kind chosen by
//! the first byte): reading never panics, and no reply names something that is not a phone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siyu::channels::sms::callbacks::{Posted, read};

const POSTS: [(&str, &str); 4] = [
    ("aliyun", "report"),
    ("aliyun", "reply"),
    ("tencent", "report"),
    ("tencent", "reply"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (provider, kind) = POSTS[usize::from(pick) % POSTS.len()];
    if let Ok(Posted::Replies(replies)) = read(provider, kind, body) {
        for r in replies {
            assert!(
                r.phone.len() == 11 && r.phone.bytes().all(|b| b.is_ascii_digit()),
                "{r:?}"
            );
        }
    }
});
