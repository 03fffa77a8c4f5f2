//! A segment rule as the API and the console receive it, from any bytes: parsing and checking
//! never panic, and a rule that passes reads back the same from what it writes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siyu::know::rule::Rule;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(rule) = Rule::from_json(&json) else {
        return;
    };
    let again = Rule::from_json(&rule.to_json()).expect("a checked rule reads back");
    assert_eq!(rule, again);
    let _ = rule.tag_ids();
});
