//! webrtc-rs setup shared by publisher and viewer: a loopback-only API,
//! non-trickle offers, and waiting for / closing a PeerConnection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::RTCPeerConnection;

/// A webrtc-rs API that only gathers a UDP/IPv4 host candidate on loopback
/// (on `address` only, when given).
pub fn loopback_api(
    media: MediaEngine,
    registry: Registry,
    address: Option<std::net::IpAddr>,
) -> API {
    // webrtc-rs's DTLS asks rustls for the process's default provider; the
    // S3 client (object_store) also enables rustls's aws-lc-rs beside the
    // ring that webrtc-rs enables, so it must be chosen explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(true);
    settings.set_ip_filter(Box::new(move |ip| {
        ip.is_loopback() && address.is_none_or(|a| a == ip)
    }));
    settings.set_network_types(vec![NetworkType::Udp4]);
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .build()
}

/// Non-trickle: creates the offer, waits for ICE gathering to complete and
/// returns the full local description.
pub async fn gathered_offer(pc: &RTCPeerConnection) -> anyhow::Result<String> {
    let offer = pc.create_offer(None).await?;
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(offer).await?;
    timeout(Duration::from_secs(5), gathered.recv())
        .await
        .context("ICE gathering did not complete within 5 s")?;
    Ok(pc
        .local_description()
        .await
        .ok_or_else(|| anyhow!("no local description"))?
        .sdp)
}

/// A watch of the PeerConnection state, plus the moment it became connected.
pub fn watch_state(
    pc: &RTCPeerConnection,
    connected_at: Arc<Mutex<Option<Instant>>>,
) -> watch::Receiver<RTCPeerConnectionState> {
    let (tx, rx) = watch::channel(RTCPeerConnectionState::New);
    pc.on_peer_connection_state_change(Box::new(move |state| {
        if state == RTCPeerConnectionState::Connected {
            connected_at
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
        }
        let _ = tx.send(state);
        Box::pin(async {})
    }));
    rx
}

pub async fn wait_connected(
    mut state: watch::Receiver<RTCPeerConnectionState>,
    who: &str,
) -> anyhow::Result<()> {
    let result = timeout(
        Duration::from_secs(10),
        state.wait_for(|s| {
            matches!(
                s,
                RTCPeerConnectionState::Connected
                    | RTCPeerConnectionState::Failed
                    | RTCPeerConnectionState::Closed
            )
        }),
    )
    .await
    .with_context(|| format!("{who}: PeerConnection not connected within 10 s"))?
    .map(|s| *s);
    match result {
        Ok(RTCPeerConnectionState::Connected) => Ok(()),
        Ok(other) => bail!("{who}: PeerConnection went {other} instead of connected"),
        Err(_) => bail!("{who}: PeerConnection state watch closed"),
    }
}

pub async fn close_pc(pc: &RTCPeerConnection) {
    let _ = timeout(Duration::from_secs(5), pc.close()).await;
}
