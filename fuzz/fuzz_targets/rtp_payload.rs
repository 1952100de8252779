//! Fuzz target `rtp_payload`: the body is `relaycast_sfu::fuzzing::rtp_payload` (its docs
//! say what it covers), shared with the test that runs the committed
//! reproducers in `fuzz/reproducers/rtp_payload/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relaycast_sfu::fuzzing::rtp_payload(data));
