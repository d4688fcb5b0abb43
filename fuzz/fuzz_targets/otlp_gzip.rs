//! The receiver's gzip inflation (bounded) before protobuf or JSON decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let json = data.first().is_some_and(|b| b & 1 == 1);
    let _ = clnrm_core::otel::receiver::decode_body(json, true, data.get(1..).unwrap_or(&[]));
});
