//! The floor: the per-packet work no SFU can avoid, measured on this machine
//! so the server's cost per forwarded packet can be read as a multiple of it.
//!
//! For one 1,200-byte RTP packet to one viewer an SFU must at least
//! - SRTP-protect it for that viewer: copy header and payload into the
//!   outgoing datagram, encrypt, authenticate (RFC 3711 / RFC 7714), and
//! - hand the datagram to the kernel: one slot of a `sendmmsg` batch to a
//!   loopback UDP socket (the kernel's loopback delivery is included, as it
//!   is in the server's own figure).
//!
//! The ciphers are aws-lc-rs, the library str0m's SRTP uses, driven the way
//! SRTP needs them with keys expanded once per session (not per packet):
//! - AEAD_AES_128_GCM and AEAD_AES_256_GCM: 12-byte IV (salt ⊕ SSRC ⊕
//!   ROC‖SEQ), the RTP header as AAD, 16-byte tag appended;
//! - AES_CM_128_HMAC_SHA1_80: an AES-128-CTR keystream over the payload, then
//!   HMAC-SHA1 over header ‖ ciphertext ‖ ROC, truncated to 10 bytes.
//!
//! Invariants: every loop is bounded by both an iteration count and a time
//! budget; the loopback receiver is drained outside the timed sections, so
//! the kernel never drops (a drop would be cheaper than a delivery).

use std::hint::black_box;
use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrIn};
use serde_json::{json, Value};

/// The RTP packet measured: a 12-byte header plus 8 bytes of one-byte header
/// extensions (transport-wide sequence number, padding), then the payload.
pub const PACKET_LEN: usize = 1200;
const HEADER_LEN: usize = 20;
const GCM_TAG_LEN: usize = 16;
const HMAC_TAG_LEN: usize = 10;
/// Datagrams per `sendmmsg` call.
pub const BATCH: usize = 32;

/// The floor's parts, each in nanoseconds per packet.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    pub aead_aes_128_gcm_ns: f64,
    pub aead_aes_256_gcm_ns: f64,
    pub aes_cm_128_hmac_sha1_80_ns: f64,
    /// One datagram's share of a `sendmmsg` of [`BATCH`] to loopback.
    pub sendmmsg_slot_ns: f64,
    /// One `sendto` per datagram, for comparison with the batch.
    pub sendto_ns: f64,
}

/// The SRTP profiles the floor knows, by their RFC names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    AeadAes128Gcm,
    AeadAes256Gcm,
    AesCm128HmacSha1_80,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Profile::AeadAes256Gcm => "AEAD_AES_256_GCM",
            Profile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
        }
    }

    /// What str0m peers negotiate with each other: a str0m DTLS client
    /// offers AEAD_AES_256_GCM first and the server takes the client's first
    /// supported profile (RFC 5764 §4.1.1), so the load tool's viewers (and
    /// Chromium, which offers the same order) get AES-256-GCM.
    pub const LOADTEST_VIEWERS: Profile = Profile::AeadAes256Gcm;
}

impl Floor {
    pub fn srtp_ns(&self, profile: Profile) -> f64 {
        match profile {
            Profile::AeadAes128Gcm => self.aead_aes_128_gcm_ns,
            Profile::AeadAes256Gcm => self.aead_aes_256_gcm_ns,
            Profile::AesCm128HmacSha1_80 => self.aes_cm_128_hmac_sha1_80_ns,
        }
    }

    /// SRTP protect plus one `sendmmsg` slot, in microseconds.
    pub fn floor_us(&self, profile: Profile) -> f64 {
        (self.srtp_ns(profile) + self.sendmmsg_slot_ns) / 1000.0
    }

    pub fn to_json(&self) -> Value {
        let profile = Profile::LOADTEST_VIEWERS;
        json!({
            "packet_bytes": PACKET_LEN,
            "srtp_protect_ns": {
                "AEAD_AES_128_GCM": self.aead_aes_128_gcm_ns,
                "AEAD_AES_256_GCM": self.aead_aes_256_gcm_ns,
                "AES_CM_128_HMAC_SHA1_80": self.aes_cm_128_hmac_sha1_80_ns,
            },
            "sendmmsg_slot_ns": self.sendmmsg_slot_ns,
            "sendmmsg_batch": BATCH,
            "sendto_ns": self.sendto_ns,
            "floor_us": {
                "AEAD_AES_128_GCM": self.floor_us(Profile::AeadAes128Gcm),
                "AEAD_AES_256_GCM": self.floor_us(Profile::AeadAes256Gcm),
                "AES_CM_128_HMAC_SHA1_80": self.floor_us(Profile::AesCm128HmacSha1_80),
            },
            "loadtest_profile": profile.name(),
        })
    }

    pub fn human(&self) -> String {
        format!(
            "floor per {PACKET_LEN}-byte packet: SRTP protect AEAD_AES_128_GCM {:.0} ns, \
             AEAD_AES_256_GCM {:.0} ns, AES_CM_128_HMAC_SHA1_80 {:.0} ns; \
             sendmmsg slot ({BATCH}/call, loopback) {:.0} ns (sendto {:.0} ns)\n\
             floor = SRTP + sendmmsg slot: {:.2} µs (128-GCM), {:.2} µs (256-GCM, what the \
             load tool's viewers negotiate), {:.2} µs (CM-SHA1-80)\n",
            self.aead_aes_128_gcm_ns,
            self.aead_aes_256_gcm_ns,
            self.aes_cm_128_hmac_sha1_80_ns,
            self.sendmmsg_slot_ns,
            self.sendto_ns,
            self.floor_us(Profile::AeadAes128Gcm),
            self.floor_us(Profile::AeadAes256Gcm),
            self.floor_us(Profile::AesCm128HmacSha1_80),
        )
    }
}

/// Measures every part for about `budget` each (at most 10 M iterations),
/// taking the fastest of three rounds, as a noisy shared machine only ever
/// adds time.
pub fn measure(budget: Duration) -> Result<Floor, String> {
    let round = budget / 3;
    let best = |f: &mut dyn FnMut(Duration) -> Result<f64, String>| -> Result<f64, String> {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            best = best.min(f(round)?);
        }
        Ok(best)
    };
    let mut sink = Sink::new()?;
    Ok(Floor {
        aead_aes_128_gcm_ns: best(&mut |d| gcm(&AES_128_GCM, 16, d))?,
        aead_aes_256_gcm_ns: best(&mut |d| gcm(&AES_256_GCM, 32, d))?,
        aes_cm_128_hmac_sha1_80_ns: best(&mut |d| cm_hmac_sha1_80(d))?,
        sendmmsg_slot_ns: best(&mut |d| sink.sendmmsg_slot(d))?,
        sendto_ns: best(&mut |d| sink.sendto(d))?,
    })
}

const MAX_ITERATIONS: u64 = 10_000_000;

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; PACKET_LEN];
    p[0] = 0x90; // V=2, X=1
    p[1] = 96;
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p[12..16].copy_from_slice(&[0xbe, 0xde, 0x00, 0x01]);
    for (i, b) in p[HEADER_LEN..].iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    p
}

/// Runs `step(i)` until `budget` passes; nanoseconds per step.
fn timed(budget: Duration, mut step: impl FnMut(u64) -> Result<(), String>) -> Result<f64, String> {
    let start = Instant::now();
    let mut i = 0u64;
    // Check the clock every 256 steps: reading it costs ~25 ns.
    while i < MAX_ITERATIONS && (i % 256 != 0 || start.elapsed() < budget) {
        step(i)?;
        i += 1;
    }
    Ok(start.elapsed().as_nanos() as f64 / i.max(1) as f64)
}

/// SRTP AEAD protect (RFC 7714): IV = salt ⊕ (0‖SSRC‖ROC‖SEQ), AAD = header.
fn gcm(
    algorithm: &'static aws_lc_rs::aead::Algorithm,
    key_len: usize,
    budget: Duration,
) -> Result<f64, String> {
    let key = LessSafeKey::new(
        UnboundKey::new(algorithm, &vec![7u8; key_len]).map_err(|e| format!("GCM key: {e}"))?,
    );
    let salt = [3u8; 12];
    let plain = packet();
    let mut out = vec![0u8; PACKET_LEN + GCM_TAG_LEN];
    timed(budget, |i| {
        let seq = i as u16;
        let roc = (i >> 16) as u32;
        out[..PACKET_LEN].copy_from_slice(&plain);
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        let mut iv = salt;
        for (k, b) in [0, 0]
            .into_iter()
            .chain(0x1234_5678u32.to_be_bytes())
            .chain(roc.to_be_bytes())
            .chain(seq.to_be_bytes())
            .enumerate()
        {
            iv[k] ^= b;
        }
        let nonce = Nonce::assume_unique_for_key(iv);
        let (header, body) = out[..PACKET_LEN].split_at_mut(HEADER_LEN);
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(&*header), body)
            .map_err(|e| format!("GCM seal: {e}"))?;
        out[PACKET_LEN..].copy_from_slice(tag.as_ref());
        black_box(&out);
        Ok(())
    })
}

/// SRTP AES_CM_128_HMAC_SHA1_80 protect (RFC 3711): AES-128-CTR over the
/// payload with IV = (salt‖0x0000) ⊕ (SSRC << 64) ⊕ (index << 16), then
/// HMAC-SHA1(header ‖ ciphertext ‖ ROC) truncated to 80 bits.
fn cm_hmac_sha1_80(budget: Duration) -> Result<f64, String> {
    let cipher = EncryptingKey::ctr(
        UnboundCipherKey::new(&AES_128, &[7u8; 16]).map_err(|e| format!("AES key: {e}"))?,
    )
    .map_err(|e| format!("AES-CTR: {e}"))?;
    let auth = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[9u8; 20]);
    let salt = [5u8; 14];
    let plain = packet();
    let mut out = vec![0u8; PACKET_LEN + HMAC_TAG_LEN];
    timed(budget, |i| {
        let seq = i as u16;
        let roc = (i >> 16) as u32;
        let index = (u64::from(roc) << 16) | u64::from(seq);
        out[..PACKET_LEN].copy_from_slice(&plain);
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&salt);
        for (k, b) in 0x1234_5678u32.to_be_bytes().into_iter().enumerate() {
            iv[4 + k] ^= b;
        }
        for (k, b) in index.to_be_bytes()[2..].iter().enumerate() {
            iv[8 + k] ^= b;
        }
        let context = EncryptionContext::Iv128(FixedLength::from(iv));
        cipher
            .less_safe_encrypt(&mut out[HEADER_LEN..PACKET_LEN], context)
            .map_err(|e| format!("AES-CTR: {e}"))?;
        let mut mac = hmac::Context::with_key(&auth);
        mac.update(&out[..PACKET_LEN]);
        mac.update(&roc.to_be_bytes());
        let tag = mac.sign();
        out[PACKET_LEN..].copy_from_slice(&tag.as_ref()[..HMAC_TAG_LEN]);
        black_box(&out);
        Ok(())
    })
}

/// A loopback sender and a receiver it writes to, drained between batches.
struct Sink {
    sender: UdpSocket,
    receiver: UdpSocket,
    to: SocketAddr,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl Sink {
    fn new() -> Result<Sink, String> {
        let receiver = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("floor socket: {e}"))?;
        receiver
            .set_nonblocking(true)
            .map_err(|e| format!("floor socket: {e}"))?;
        let sender = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("floor socket: {e}"))?;
        let to = receiver
            .local_addr()
            .map_err(|e| format!("floor socket: {e}"))?;
        Ok(Sink {
            sender,
            receiver,
            to,
            payload: vec![0x80; PACKET_LEN + GCM_TAG_LEN],
            scratch: vec![0; 2048],
        })
    }

    /// Reads what the last batch delivered (untimed), so nothing is dropped.
    fn drain(&mut self) {
        for _ in 0..BATCH * 2 {
            if self.receiver.recv_from(&mut self.scratch).is_err() {
                return;
            }
        }
    }

    fn sendmmsg_slot(&mut self, budget: Duration) -> Result<f64, String> {
        let SocketAddr::V4(v4) = self.to else {
            return Err("floor receiver is not IPv4".into());
        };
        let addrs = vec![Some(SockaddrIn::from(v4)); BATCH];
        let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
        let fd = self.sender.as_raw_fd();
        let (mut spent, mut sent) = (Duration::ZERO, 0u64);
        let start = Instant::now();
        while start.elapsed() < budget && sent < MAX_ITERATIONS {
            let slices: Vec<[IoSlice<'_>; 1]> =
                (0..BATCH).map(|_| [IoSlice::new(&self.payload)]).collect();
            let t = Instant::now();
            let cmsgs: [ControlMessage<'_>; 0] = [];
            sendmmsg(fd, &mut headers, &slices, &addrs, cmsgs, MsgFlags::empty())
                .map_err(|e| format!("sendmmsg: {e}"))?;
            spent += t.elapsed();
            sent += BATCH as u64;
            drop(slices);
            self.drain();
        }
        Ok(spent.as_nanos() as f64 / sent.max(1) as f64)
    }

    fn sendto(&mut self, budget: Duration) -> Result<f64, String> {
        let (mut spent, mut sent) = (Duration::ZERO, 0u64);
        let start = Instant::now();
        while start.elapsed() < budget && sent < MAX_ITERATIONS {
            let t = Instant::now();
            for _ in 0..BATCH {
                self.sender
                    .send_to(&self.payload, self.to)
                    .map_err(|e| format!("sendto: {e}"))?;
            }
            spent += t.elapsed();
            sent += BATCH as u64;
            self.drain();
        }
        Ok(spent.as_nanos() as f64 / sent.max(1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_the_floor_is_measured_and_positive() {
        let floor = measure(Duration::from_millis(30)).expect("floor measures");
        for (name, ns) in [
            ("gcm128", floor.aead_aes_128_gcm_ns),
            ("gcm256", floor.aead_aes_256_gcm_ns),
            ("cm-sha1", floor.aes_cm_128_hmac_sha1_80_ns),
            ("sendmmsg", floor.sendmmsg_slot_ns),
            ("sendto", floor.sendto_ns),
        ] {
            assert!(ns.is_finite() && ns > 0.0, "{name}: {ns}");
        }
        assert!(floor.floor_us(Profile::AeadAes256Gcm) > floor.sendmmsg_slot_ns / 1000.0);
    }

    #[test]
    fn the_gcm_tag_authenticates_what_was_sealed() {
        // The measured sealing is real AEAD: opening it with the same IV and
        // header gives the packet back, and a flipped bit is refused.
        let key = || LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).expect("key"));
        let plain = packet();
        let mut sealed = plain.clone();
        let (header, body) = sealed.split_at_mut(HEADER_LEN);
        let tag = key()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&*header),
                body,
            )
            .expect("seal");
        sealed.extend_from_slice(tag.as_ref());
        let mut opened = sealed.clone();
        let (header, body) = opened.split_at_mut(HEADER_LEN);
        let clear = key()
            .open_in_place(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&*header),
                body,
            )
            .expect("open");
        assert_eq!(clear, &plain[HEADER_LEN..]);
        sealed[100] ^= 1;
        let (header, body) = sealed.split_at_mut(HEADER_LEN);
        assert!(key()
            .open_in_place(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&*header),
                body
            )
            .is_err());
    }
}
