//! Fuzz target `datagram`: the body is `relaycast_sfu::fuzzing::datagram` (its docs
//! say what it covers), shared with the test that runs the committed
//! reproducers in `fuzz/reproducers/datagram/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relaycast_sfu::fuzzing::datagram(data));
