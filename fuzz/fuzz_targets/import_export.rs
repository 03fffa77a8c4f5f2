//! An export file of any bytes, read as an import reads it (the preset chosen by the first
//! byte): the reader never panics, and what it counts adds up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siyu::know::import::presets::{PRESET_NAMES, preset};
use siyu::know::import::{ImportOptions, read_only};
use siyu::platform::crypto::FieldCipher;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let name = PRESET_NAMES[usize::from(pick) % PRESET_NAMES.len()];
    let Some(preset) = preset(name) else {
        return;
    };
    let mut opts = ImportOptions::new(preset);
    // Small chunks, so that an input of a few orders crosses a chunk's end too.
    opts.chunk_orders = 3;
    let cipher = FieldCipher::new(&[7u8; 32]);
    let rejects =
        std::env::temp_dir().join(format!("siyu-fuzz-rejects-{}.csv", std::process::id()));
    if let Ok(read) = read_only(file, &opts, &cipher, &rejects) {
        assert!(read.rejected <= read.rows, "{read:?}");
        assert!(read.orders as u64 <= read.rows, "{read:?}");
    }
});
