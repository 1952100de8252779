//! [`PinnedSsrcTrack`]: a webrtc-rs `TrackLocal` that sends with an SSRC of
//! the test's choosing, so a second publisher can reuse the first one's
//! SSRCs the way OBS does when it reconnects.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::track::track_local::{TrackLocal, TrackLocalContext, TrackLocalWriter};

/// A TrackLocal that writes with an SSRC of our choosing (webrtc-rs 0.14
/// draws every sender/encoding SSRC at random in `add_encoding_internal` and
/// `TrackLocalStaticRTP` stamps that SSRC on every packet; there is no API to
/// choose it). Mirrors what `TrackLocalStaticRTP::bind` does otherwise: the
/// negotiated payload type plus the mid and rid header extensions.
#[derive(Debug)]
pub struct PinnedSsrcTrack {
    codec: RTCRtpCodecCapability,
    id: String,
    rid: Option<String>,
    stream_id: String,
    ssrc: u32,
    binding: Mutex<Option<PinnedBinding>>,
}

#[derive(Debug, Clone)]
struct PinnedBinding {
    context_id: String,
    payload_type: u8,
    extensions: Vec<(u8, Bytes)>,
    writer: Arc<dyn TrackLocalWriter + Send + Sync>,
}

impl PinnedSsrcTrack {
    pub fn new(
        codec: RTCRtpCodecCapability,
        id: String,
        rid: Option<String>,
        stream_id: String,
        ssrc: u32,
    ) -> Self {
        PinnedSsrcTrack {
            codec,
            id,
            rid,
            stream_id,
            ssrc,
            binding: Mutex::new(None),
        }
    }

    pub async fn write_rtp(
        &self,
        packet: &webrtc::rtp::packet::Packet,
    ) -> webrtc::error::Result<usize> {
        let Some(binding) = self.binding.lock().unwrap().clone() else {
            return Ok(0);
        };
        let mut packet = packet.clone();
        packet.header.ssrc = self.ssrc;
        packet.header.payload_type = binding.payload_type;
        for (id, value) in &binding.extensions {
            packet.header.set_extension(*id, value.clone())?;
        }
        binding.writer.write_rtp(&packet).await
    }

    fn bind_now(
        &self,
        context: &TrackLocalContext,
    ) -> webrtc::error::Result<RTCRtpCodecParameters> {
        let codec = context
            .codec_parameters()
            .iter()
            .find(|c| {
                c.capability
                    .mime_type
                    .eq_ignore_ascii_case(&self.codec.mime_type)
            })
            .cloned()
            .ok_or(webrtc::Error::ErrUnsupportedCodec)?;
        let extension_id = |uri: &str| {
            context
                .header_extensions()
                .iter()
                .find(|e| e.uri == uri)
                .map(|e| e.id as u8)
        };
        let mut extensions = Vec::new();
        if let (Some(id), Some(mid)) = (
            extension_id(webrtc::sdp::extmap::SDES_MID_URI),
            context.mid(),
        ) {
            extensions.push((id, Bytes::copy_from_slice(mid.as_bytes())));
        }
        if let (Some(id), Some(rid)) = (
            extension_id(webrtc::sdp::extmap::SDES_RTP_STREAM_ID_URI),
            &self.rid,
        ) {
            extensions.push((id, Bytes::copy_from_slice(rid.as_bytes())));
        }
        *self.binding.lock().unwrap() = Some(PinnedBinding {
            context_id: context.id(),
            payload_type: codec.payload_type,
            extensions,
            writer: context.write_stream(),
        });
        Ok(codec)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// `TrackLocal` is an `#[async_trait]` trait; this is its desugared form (the
// `async-trait` crate is not a dev-dependency).
impl TrackLocal for PinnedSsrcTrack {
    fn bind<'life0, 'life1, 'async_trait>(
        &'life0 self,
        t: &'life1 TrackLocalContext,
    ) -> BoxFuture<'async_trait, webrtc::error::Result<RTCRtpCodecParameters>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move { self.bind_now(t) })
    }

    fn unbind<'life0, 'life1, 'async_trait>(
        &'life0 self,
        t: &'life1 TrackLocalContext,
    ) -> BoxFuture<'async_trait, webrtc::error::Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let mut binding = self.binding.lock().unwrap();
            match binding.as_ref() {
                Some(b) if b.context_id == t.id() => {
                    *binding = None;
                    Ok(())
                }
                _ => Err(webrtc::Error::ErrUnbindFailed),
            }
        })
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn rid(&self) -> Option<&str> {
        self.rid.as_deref()
    }

    fn stream_id(&self) -> &str {
        &self.stream_id
    }

    fn kind(&self) -> RTPCodecType {
        if self.codec.mime_type.starts_with("audio/") {
            RTPCodecType::Audio
        } else {
            RTPCodecType::Video
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
