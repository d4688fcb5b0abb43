//! A test definition as written: the spanned TOML reader, the model and every
//! validation rule, on any text.
#![no_main]

use clnrm_core::diag::Source;
use clnrm_core::validate::HostPaths;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let src = Source::file("fuzz.clnrm.toml", text);
    let (file, mut diags) = clnrm_core::model::parse_test_file(&src);
    if let Some(f) = &file {
        clnrm_core::validate::check(f, &src, &HostPaths::default(), &mut diags);
    }
    for d in diags.into_sorted() {
        let _ = clnrm_core::diag::render_human(&d, clnrm_core::diag::Style::Plain);
    }
});
