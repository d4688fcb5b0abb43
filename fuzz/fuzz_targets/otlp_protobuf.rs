//! The receiver's OTLP protobuf decoding, on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = clnrm_core::otel::receiver::decode_body(false, false, data);
});
