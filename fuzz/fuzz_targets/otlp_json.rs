//! The receiver's OTLP-JSON decoding (span by span), the whole-document reader and
//! the stdout intake, on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = clnrm_core::otel::receiver::decode_body(true, false, data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = clnrm_core::otel::spans_in_output(text);
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            let _ = clnrm_core::otel::from_otlp_json(&value);
        }
    }
});
