//! CMAF / fragmented MP4 for one rendition: an init segment (`ftyp` +
//! `moov` with an H264 track and, when the broadcast has audio, an Opus
//! track) and media segments (`styp` + `moof` + `mdat`), built with the
//! `mp4-atom` crate's boxes rather than by hand.
//!
//! Invariants: track 1 is video (90 kHz), track 2 audio (48 kHz); every
//! media segment starts with a video sync sample; `trun` data offsets point
//! into the segment's own `mdat` (`default-base-is-moof`).

use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dops, Dref, Encode, Ftyp, Hdlr, Mdat, Mdhd, Mdia, Mfhd, Minf, Moof,
    Moov, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsd, Styp, Tfdt, Tfhd, Tkhd, Traf, Trak, Trex, Trun,
    TrunEntry, TrunSamples, Url, Visual, Vmhd,
};

use super::h264::ParameterSets;

pub const VIDEO_TRACK: u32 = 1;
pub const AUDIO_TRACK: u32 = 2;
pub const VIDEO_TIMESCALE: u32 = 90_000;
pub const AUDIO_TIMESCALE: u32 = 48_000;

/// ISO/IEC 14496-12 sample flags: a sync sample, and one that depends on
/// another (non-sync).
const SYNC_SAMPLE: u32 = 0x0200_0000;
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// One sample of a track in a segment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Decode time in the track's timescale.
    pub dts: u64,
    pub duration: u32,
    pub sync: bool,
    pub data: bytes::Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("mp4 encoding: {0}")]
    Encode(#[from] mp4_atom::Error),
    #[error("a segment of over 2 GiB")]
    TooLarge,
}

/// The init segment of a rendition.
pub fn init_segment(
    params: &ParameterSets,
    (width, height): (u16, u16),
    audio_channels: Option<u16>,
) -> Result<Vec<u8>, Fmp4Error> {
    let mut trak = vec![video_trak(params, width, height)?];
    let mut trex = vec![trex_of(VIDEO_TRACK)];
    if let Some(channels) = audio_channels {
        trak.push(audio_trak(channels));
        trex.push(trex_of(AUDIO_TRACK));
    }
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: trak.len() as u32 + 1,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![
            b"iso6".into(),
            b"cmfc".into(),
            b"mp41".into(),
            b"avc1".into(),
        ],
    }
    .encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}

fn trex_of(track_id: u32) -> Trex {
    Trex {
        track_id,
        default_sample_description_index: 1,
        default_sample_duration: 0,
        default_sample_size: 0,
        default_sample_flags: 0,
    }
}

fn empty_stbl(stsd: Stsd) -> Stbl {
    Stbl {
        stsd,
        stco: Some(Stco::default()),
        ..Default::default()
    }
}

fn dinf() -> Dinf {
    Dinf {
        dref: Dref {
            entries: vec![Url::default().into()],
        },
    }
}

fn video_trak(params: &ParameterSets, width: u16, height: u16) -> Result<Trak, Fmp4Error> {
    let avcc = Avcc::new(&params.sps, &params.pps)?;
    let avc1 = Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width,
            height,
            horizresolution: 72.into(),
            vertresolution: 72.into(),
            frame_count: 1,
            compressor: "".into(),
            depth: 24,
        },
        avcc,
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    };
    Ok(Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: width.into(),
            height: height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: VIDEO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"vide".into(),
                name: "relaycast video".into(),
            },
            minf: Minf {
                vmhd: Some(Vmhd::default()),
                dinf: dinf(),
                stbl: empty_stbl(Stsd {
                    codecs: vec![avc1.into()],
                }),
                ..Default::default()
            },
        },
        ..Default::default()
    })
}

fn audio_trak(channels: u16) -> Trak {
    let opus = Opus {
        audio: Audio {
            data_reference_index: 1,
            channel_count: channels,
            sample_size: 16,
            sample_rate: 48000.into(),
        },
        dops: Dops {
            output_channel_count: channels as u8,
            // RFC 7845's recommended pre-skip for 48 kHz (80 ms would be
            // the maximum); WebRTC's Opus encoder uses this.
            pre_skip: 312,
            input_sample_rate: AUDIO_TIMESCALE,
            output_gain: 0,
            channel_mapping: None,
        },
        btrt: None,
    };
    Trak {
        tkhd: Tkhd {
            track_id: AUDIO_TRACK,
            alternate_group: 1,
            enabled: true,
            in_movie: true,
            volume: 1.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: AUDIO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"soun".into(),
                name: "relaycast audio".into(),
            },
            minf: Minf {
                smhd: Some(Smhd::default()),
                dinf: dinf(),
                stbl: empty_stbl(Stsd {
                    codecs: vec![opus.into()],
                }),
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

/// One media segment: `video` must start with a sync sample; `audio` may
/// be empty.
pub fn media_segment(
    sequence: u32,
    video: &[Sample],
    audio: &[Sample],
) -> Result<Vec<u8>, Fmp4Error> {
    let tracks: Vec<(u32, &[Sample])> = [(VIDEO_TRACK, video), (AUDIO_TRACK, audio)]
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    // Encode once to learn the moof's size, then again with the offsets
    // (their fields are present both times, so the size does not change).
    let mut moof = moof(sequence, &tracks, &[0; 2]);
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let mdat_header = 8;
    let mut offset = probe.len() + mdat_header;
    let mut offsets = [0i32; 2];
    for (i, (_, samples)) in tracks.iter().enumerate() {
        offsets[i] = i32::try_from(offset).map_err(|_| Fmp4Error::TooLarge)?;
        offset += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    moof = self::moof(sequence, &tracks, &offsets);
    let mut data = Vec::with_capacity(offset - probe.len() - mdat_header);
    for (_, samples) in &tracks {
        for s in *samples {
            data.extend_from_slice(&s.data);
        }
    }
    let mut out = Vec::with_capacity(offset + 32);
    Styp {
        major_brand: b"msdh".into(),
        minor_version: 0,
        compatible_brands: vec![b"msdh".into(), b"msix".into(), b"cmfc".into()],
    }
    .encode(&mut out)?;
    moof.encode(&mut out)?;
    Mdat { data }.encode(&mut out)?;
    Ok(out)
}

fn moof(sequence: u32, tracks: &[(u32, &[Sample])], offsets: &[i32; 2]) -> Moof {
    let traf = tracks
        .iter()
        .zip(offsets)
        .map(|((track_id, samples), &offset)| Traf {
            tfhd: Tfhd {
                track_id: *track_id,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: samples.first().map_or(0, |s| s.dts),
            }),
            trun: vec![Trun {
                data_offset: Some(offset),
                samples: TrunSamples::Explicit(
                    samples
                        .iter()
                        .map(|s| TrunEntry {
                            duration: Some(s.duration),
                            size: Some(s.data.len() as u32),
                            flags: Some(if s.sync { SYNC_SAMPLE } else { NON_SYNC_SAMPLE }),
                            cts: None,
                        })
                        .collect(),
                ),
            }],
            ..Default::default()
        })
        .collect();
    Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf,
    }
}

#[cfg(test)]
mod tests {
    use mp4_atom::{Any, Decode};

    use super::*;

    fn params() -> ParameterSets {
        ParameterSets {
            sps: vec![0x67, 0x42, 0xe0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8],
            pps: vec![0x68, 0xce, 0x3c, 0x80],
        }
    }

    fn sample(dts: u64, sync: bool, len: usize) -> Sample {
        Sample {
            dts,
            duration: 3000,
            sync,
            data: bytes::Bytes::from(vec![0xab; len]),
        }
    }

    #[test]
    fn init_segment_decodes_back_with_both_tracks() {
        let init = init_segment(&params(), (1280, 720), Some(2)).expect("encodes");
        let buf = &mut std::io::Cursor::new(&init);
        assert!(matches!(Any::decode(buf), Ok(Any::Ftyp(_))));
        let Ok(Any::Moov(moov)) = Any::decode(buf) else {
            panic!("a moov follows the ftyp");
        };
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[0].tkhd.width, 1280.into());
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, AUDIO_TIMESCALE);
    }

    #[test]
    fn data_offsets_point_at_each_tracks_samples_in_the_mdat() {
        let video = [sample(0, true, 100), sample(3000, false, 50)];
        let audio = [Sample {
            dts: 0,
            duration: 960,
            sync: true,
            data: bytes::Bytes::from_static(&[7; 20]),
        }];
        let seg = media_segment(3, &video, &audio).expect("encodes");
        let buf = &mut std::io::Cursor::new(&seg);
        assert!(matches!(Any::decode(buf), Ok(Any::Styp(_))));
        let moof_start = buf.position() as usize;
        let Ok(Any::Moof(moof)) = Any::decode(buf) else {
            panic!("a moof follows the styp");
        };
        assert_eq!(moof.mfhd.sequence_number, 3);
        let audio_at = moof_start + moof.traf[1].trun[0].data_offset.expect("set") as usize;
        assert_eq!(&seg[audio_at..audio_at + 20], &[7; 20]);
        let video_at = moof_start + moof.traf[0].trun[0].data_offset.expect("set") as usize;
        assert_eq!(seg[video_at], 0xab);
        assert_eq!(video_at + 150, audio_at);
    }
}
