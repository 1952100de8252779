//! Fuzz target `ws_message`: the body is `relaycast_signaling::fuzzing::ws_message` (its
//! docs say what it covers), shared with the test that runs the committed
//! reproducers in `fuzz/reproducers/ws_message/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relaycast_signaling::fuzzing::ws_message(data));
