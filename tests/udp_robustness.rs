//! Network input never takes the server down: datagrams from strangers
//! (random bytes, STUN naming no session, RTP/RTCP/DTLS-looking headers,
//! oversized, empty) are dropped and counted, and the server keeps serving.

use std::net::UdpSocket;
use std::time::Duration;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::hash::{BuildHasher, Hasher};
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let dir = std::env::temp_dir().join(format!("relaycast-{tag}-{n:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A deterministic byte source, so a failure reproduces.
struct Lcg(u64);
impl Lcg {
    fn byte(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

fn stun_binding_request(username: &str) -> Vec<u8> {
    let mut attr = vec![0x00, 0x06];
    attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attr.extend_from_slice(username.as_bytes());
    while attr.len() % 4 != 0 {
        attr.push(0);
    }
    let mut d = vec![0x00, 0x01];
    d.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    d.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    d.extend_from_slice(&[9; 12]);
    d.extend_from_slice(&attr);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_dropped_counted_and_harmless() {
    let mut config = relaycast::Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        udp_port: 0,
        public_ip: Some("127.0.0.1".parse().unwrap()),
        data_dir: temp_dir("udp-garbage"),
        ..Default::default()
    };
    config
        .stream_keys
        .insert("live".into(), "testsecret123".into());
    let server = relaycast::start(config).await.unwrap();
    let target = server.udp_addr;

    let mut rng = Lcg(42);
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    for i in 0..2000usize {
        datagrams.push(rng.bytes(i % 1400));
    }
    let mut rtp_like = rng.bytes(200);
    rtp_like[0] = 0x80;
    let mut rtcp_like = rng.bytes(64);
    rtcp_like[0] = 0x80;
    rtcp_like[1] = 200;
    let mut dtls_like = rng.bytes(100);
    dtls_like[0] = 22;
    datagrams.extend([
        rtp_like,
        rtcp_like,
        dtls_like,
        stun_binding_request("nosuchufrag:peer"),
        stun_binding_request(""),
        vec![0u8; 1500],
        vec![0x00, 0x01, 0xff, 0xff, 0x21, 0x12, 0xa4, 0x42],
    ]);
    let sent = datagrams.len() as u64;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        socket.send_to(d, target).unwrap();
        // Stay below the socket's receive buffer: this test is about
        // parsing, not about overload.
        std::thread::sleep(Duration::from_micros(50));
    }

    let media = server.media();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while media.drops_total(relaycast_sfu::DropReason::UnknownPeer) < sent
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        media.drops_total(relaycast_sfu::DropReason::UnknownPeer),
        sent,
        "every stranger datagram is counted"
    );

    // The server still serves HTTP and the media worker still answers.
    let url = format!("http://{}/readyz", server.http_addr);
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 200);
    server.shutdown().await;
}
