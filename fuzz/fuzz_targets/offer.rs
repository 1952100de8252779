//! Fuzz target `offer`: the body is `relaycast_sfu::fuzzing::offer` (its docs
//! say what it covers), shared with the test that runs the committed
//! reproducers in `fuzz/reproducers/offer/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relaycast_sfu::fuzzing::offer(data));
