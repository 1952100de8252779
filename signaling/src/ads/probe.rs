//! What an uploaded creative is: its MIME type from its first bytes (MP4's
//! `ftyp`, WebM's EBML magic; anything else is refused, since a player
//! could not play it), and for MP4 its duration and picture size from the
//! `moov` box (`mp4-atom`). A WebM creative's size and duration come from
//! the upload form: they sit deep in its EBML tree and are optional there.

use mp4_atom::{Any, DecodeMaybe};

/// What the ad server needs to know of a creative file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creative {
    pub mime_type: &'static str,
    pub width: i64,
    pub height: i64,
    pub duration_ms: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("the creative must be an MP4 or WebM video")]
    NotVideo,
    #[error("the companion banner must be a PNG, JPEG, GIF or WebP image of at most 4096x4096")]
    NotImage,
}

/// A companion banner: its MIME type and size, from its header (the
/// `imagesize` crate; nothing is decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banner {
    pub mime_type: &'static str,
    pub width: i64,
    pub height: i64,
}

pub fn probe_banner(bytes: &[u8]) -> Result<Banner, ProbeError> {
    use imagesize::ImageType;
    let mime_type = match imagesize::image_type(bytes).map_err(|_| ProbeError::NotImage)? {
        ImageType::Png => "image/png",
        ImageType::Jpeg => "image/jpeg",
        ImageType::Gif => "image/gif",
        ImageType::Webp => "image/webp",
        _ => return Err(ProbeError::NotImage),
    };
    let size = imagesize::blob_size(bytes).map_err(|_| ProbeError::NotImage)?;
    if !(1..=4096).contains(&size.width) || !(1..=4096).contains(&size.height) {
        return Err(ProbeError::NotImage);
    }
    Ok(Banner {
        mime_type,
        width: size.width as i64,
        height: size.height as i64,
    })
}

/// Sniffs `bytes`; sizes and duration are 0 where unknown.
pub fn probe(bytes: &[u8]) -> Result<Creative, ProbeError> {
    if bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]) {
        return Ok(Creative {
            mime_type: "video/webm",
            width: 0,
            height: 0,
            duration_ms: 0,
        });
    }
    if bytes.get(4..8) != Some(b"ftyp") {
        return Err(ProbeError::NotVideo);
    }
    let mut creative = Creative {
        mime_type: "video/mp4",
        width: 0,
        height: 0,
        duration_ms: 0,
    };
    let mut rest = bytes;
    // Top-level boxes until `moov`; a box that does not decode ends the
    // search (the caller then needs the form's values).
    while let Ok(Some(atom)) = Any::decode_maybe(&mut rest) {
        let Any::Moov(moov) = atom else { continue };
        if moov.mvhd.timescale > 0 {
            creative.duration_ms =
                (moov.mvhd.duration.saturating_mul(1000) / u64::from(moov.mvhd.timescale)) as i64;
        }
        if let Some(video) = moov
            .trak
            .iter()
            .find(|t| t.mdia.hdlr.handler == mp4_atom::FourCC::new(b"vide"))
        {
            creative.width = i64::from(video.tkhd.width.integer());
            creative.height = i64::from(video.tkhd.height.integer());
        }
        break;
    }
    Ok(creative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_video_containers_are_accepted() {
        assert_eq!(probe(b"GIF89a........"), Err(ProbeError::NotVideo));
        assert_eq!(probe(b""), Err(ProbeError::NotVideo));
        let webm = probe(&[0x1a, 0x45, 0xdf, 0xa3, 0x9f]).unwrap();
        assert_eq!(webm.mime_type, "video/webm");
        // An MP4 whose boxes stop short still counts as MP4, sizes unknown.
        let mp4 = probe(b"\0\0\0\x14ftypisom\0\0\0\0isom\0\0\0\x08").unwrap();
        assert_eq!(
            (mp4.mime_type, mp4.width, mp4.duration_ms),
            ("video/mp4", 0, 0)
        );
    }

    #[test]
    fn banners_are_images_of_a_sane_size() {
        // A 300x250 PNG header (signature and IHDR).
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(300u32.to_be_bytes());
        png.extend(250u32.to_be_bytes());
        png.extend([8, 6, 0, 0, 0]);
        assert_eq!(
            probe_banner(&png),
            Ok(Banner {
                mime_type: "image/png",
                width: 300,
                height: 250
            })
        );
        let mut huge = png.clone();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(probe_banner(&huge), Err(ProbeError::NotImage));
        assert_eq!(probe_banner(b"<svg/>"), Err(ProbeError::NotImage));
    }
}
