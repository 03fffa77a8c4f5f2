//! A WeCom callback from any bytes: the XML envelope, the signature check and the AES
//! decryption refuse what is wrong without panicking; what is sealed opens to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siyu::connect::crypto::CallbackCrypto;
use siyu::connect::events;

// A 43-character EncodingAESKey as WeCom's console shows one.
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

fuzz_target!(|data: &[u8]| {
    let Ok(crypto) = CallbackCrypto::new("siyu", KEY, "wwcorp") else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let _ = events::parse(&text);
    let _ = crypto.decrypt(&text);
    // The envelope as it arrives: find the ciphertext, then open it with its own signature.
    if let Ok(envelope) = events::Fields::parse(&text) {
        if let Some(encrypt) = envelope.get("Encrypt") {
            let signature = crypto.signature("1700000000", "n", encrypt);
            let _ = crypto.open(&signature, "1700000000", "n", encrypt, 1_700_000_000_000);
        }
    }
    let sealed = crypto.seal(&text, "1700000000", "nonce");
    let opened = crypto
        .open(
            &sealed.msg_signature,
            "1700000000",
            "nonce",
            &sealed.encrypt,
            1_700_000_000_000,
        )
        .expect("what is sealed opens");
    assert_eq!(opened, text);
});
