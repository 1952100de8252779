//! Fuzz target `token`: the body is `relaycast_signaling::fuzzing::token` (its
//! docs say what it covers), shared with the test that runs the committed
//! reproducers in `fuzz/reproducers/token/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relaycast_signaling::fuzzing::token(data));
