//! The Kineto (Chrome trace JSON) parser, both passes: never panics; never more kernel rows
//! than events carrying a `cat`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tapeout_formats::kineto::{CategoryRules, KinetoBatch, parse_kineto};

// Compiling the category regexes per input would cost more than parsing it.
static RULES: LazyLock<CategoryRules> = LazyLock::new(CategoryRules::default);

fuzz_target!(|input: &[u8]| {
    let mut rows = 0;
    let r = parse_kineto(input, "fuzz.json", &RULES, 3, &mut |b| {
        if let KinetoBatch::Kernels(b) = b {
            rows += b.num_rows();
        }
        Ok::<(), std::convert::Infallible>(())
    });
    if r.is_ok() {
        let cats = input.windows(5).filter(|w| w == b"\"cat\"").count();
        assert!(rows <= cats, "{rows} rows from {cats} events");
    }
});
