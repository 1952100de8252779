//! Frame size from an H264 sequence parameter set (ITU-T H.264 §7.3.2.1.1).
//! OBS always signals `profile-level-id=42e01f` whatever it sends, so the
//! SPS in the stream is the only truth about the frame size of a layer.
//!
//! Untrusted input: every read is bounds-checked and returns `None` on
//! truncation; exp-Golomb codes longer than 32 bits are rejected.

/// Width and height in pixels after cropping, or `None` if unparseable.
pub fn dimensions(nal: &[u8]) -> Option<(u16, u16)> {
    let rbsp = unescape(nal.get(1..)?);
    let mut r = BitReader {
        data: &rbsp,
        pos: 0,
    };
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bits(1)?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bits(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bits(1)? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bits(1)? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bits(1)?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bits(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bits(1)?;
    if frame_mbs_only == 0 {
        r.bits(1)?; // mb_adaptive_frame_field_flag
    }
    r.bits(1)?; // direct_8x8_inference_flag
    let (mut crop_x, mut crop_y) = (0, 0);
    if r.bits(1)? == 1 {
        let (l, rt, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let (unit_x, unit_y) = match chroma_format_idc {
            0 | 3 => (1, 2 - frame_mbs_only),
            2 => (2, 2 - frame_mbs_only),
            _ => (2, 2 * (2 - frame_mbs_only)),
        };
        crop_x = (l + rt) * unit_x;
        crop_y = (t + b) * unit_y;
    }
    let width = (width_mbs * 16).checked_sub(crop_x)?;
    let height = ((2 - frame_mbs_only) * height_units * 16).checked_sub(crop_y)?;
    Some((u16::try_from(width).ok()?, u16::try_from(height).ok()?))
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(r.se()?) + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Drops emulation-prevention bytes (00 00 03 → 00 00).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(v)
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let magnitude = k.div_ceil(2) as i32;
        Some(if k % 2 == 1 { magnitude } else { -magnitude })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes exp-Golomb fields so tests state an SPS by its values.
    struct BitWriter(Vec<bool>);
    impl BitWriter {
        fn bits(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.0.push((v >> i) & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let x = v + 1;
            let len = 32 - x.leading_zeros();
            self.bits(len - 1, 0).bits(len, x)
        }
        fn bytes(&self) -> Vec<u8> {
            let mut out = vec![0x67];
            for chunk in self.0.chunks(8) {
                let mut b = 0u8;
                for (i, bit) in chunk.iter().enumerate() {
                    b |= u8::from(*bit) << (7 - i);
                }
                out.push(b);
            }
            out
        }
    }

    fn sps(profile: u32, w_mbs: u32, h_mbs: u32, crop_bottom: Option<u32>) -> Vec<u8> {
        let mut w = BitWriter(Vec::new());
        w.bits(8, profile).bits(16, 0x001f).ue(0);
        if profile == 100 {
            w.ue(1).ue(0).ue(0).bits(1, 0).bits(1, 0);
        }
        w.ue(0)
            .ue(0)
            .ue(0)
            .ue(1)
            .bits(1, 0)
            .ue(w_mbs - 1)
            .ue(h_mbs - 1)
            .bits(1, 1)
            .bits(1, 1);
        match crop_bottom {
            Some(b) => w.bits(1, 1).ue(0).ue(0).ue(0).ue(b),
            None => w.bits(1, 0),
        };
        w.bits(1, 0).bits(1, 1);
        w.bytes()
    }

    #[test]
    fn table_of_sps_sizes() {
        let cases = [
            ("baseline 720p", sps(66, 80, 45, None), Some((1280, 720))),
            (
                "high 1080p with crop",
                sps(100, 120, 68, Some(4)),
                Some((1920, 1080)),
            ),
            ("high 360p", sps(100, 40, 23, Some(2)), Some((640, 364))),
            ("truncated", vec![0x67, 0x42, 0xc0], None),
        ];
        for (name, nal, want) in cases {
            assert_eq!(dimensions(&nal), want, "{name}");
        }
    }

    #[test]
    fn a_real_encoder_sps_parses() {
        // libx264 baseline 1280x720 as commonly seen in captures.
        let nal = [
            0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x06, 0xd0, 0xa1, 0x35,
        ];
        assert_eq!(dimensions(&nal), Some((1280, 720)));
    }
}
