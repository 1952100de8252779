//! Ranking simulcast layers by what is measured (frame size from keyframes,
//! then bitrate) and choosing one for a viewer. Names mean nothing: OBS's rid
//! `0` is its largest layer, Chromium's order is the application's choice.

use std::str::FromStr;

/// The quality a viewer asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayerChoice {
    /// The best layer (until adaptive selection lands, the highest).
    #[default]
    Auto,
    High,
    Medium,
    Low,
}

impl FromStr for LayerChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LayerChoice::Auto),
            "high" => Ok(LayerChoice::High),
            "medium" => Ok(LayerChoice::Medium),
            "low" => Ok(LayerChoice::Low),
            other => Err(format!(
                "unknown layer {other:?}: use high, medium, low or auto"
            )),
        }
    }
}

/// What is known of one layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerMeasure {
    pub index: u8,
    /// From the last keyframe header (VP8) or SPS (H264).
    pub dimensions: Option<(u16, u16)>,
    pub bps: u64,
    /// Has sent within the last second.
    pub active: bool,
}

impl LayerMeasure {
    fn quality(&self) -> (u32, u64) {
        let pixels = self
            .dimensions
            .map_or(0, |(w, h)| u32::from(w) * u32::from(h));
        (pixels, self.bps)
    }
}

/// The active layers, worst first.
pub fn rank(layers: &[LayerMeasure]) -> Vec<&LayerMeasure> {
    let mut active: Vec<&LayerMeasure> = layers.iter().filter(|l| l.active).collect();
    active.sort_by_key(|l| (l.quality(), l.index));
    active
}

/// The layer index for a manual `choice` among ranked layers (worst first);
/// `Auto` means the best here (the LayerSelector adapts it).
pub fn pick(choice: LayerChoice, ranked: &[&LayerMeasure]) -> Option<u8> {
    let pick = match choice {
        LayerChoice::Auto | LayerChoice::High => ranked.last(),
        LayerChoice::Low => ranked.first(),
        LayerChoice::Medium => ranked.get(ranked.len().saturating_sub(1) / 2),
    };
    pick.map(|l| l.index)
}

/// The layer index for `choice` among the active layers, if any.
pub fn choose(choice: LayerChoice, layers: &[LayerMeasure]) -> Option<u8> {
    pick(choice, &rank(layers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(index: u8, dims: Option<(u16, u16)>, bps: u64, active: bool) -> LayerMeasure {
        LayerMeasure {
            index,
            dimensions: dims,
            bps,
            active,
        }
    }

    #[test]
    fn table_of_choices() {
        // OBS: rid 0 (index 0) is the largest.
        let obs = [
            layer(0, Some((1920, 1080)), 6_000_000, true),
            layer(1, Some((960, 540)), 1_500_000, true),
            layer(2, Some((480, 270)), 400_000, true),
        ];
        // Chromium: smallest first, sizes not yet known (ranked by bitrate).
        let chrome = [
            layer(0, None, 150_000, true),
            layer(1, None, 500_000, true),
            layer(2, None, 2_500_000, true),
        ];
        let top_gone = [
            layer(0, Some((1280, 720)), 0, false),
            layer(1, Some((640, 360)), 500_000, true),
            layer(2, Some((320, 180)), 150_000, true),
        ];
        let two = [
            layer(0, Some((1280, 720)), 1, true),
            layer(1, Some((640, 360)), 1, true),
        ];
        let cases: &[(&str, &[LayerMeasure], LayerChoice, Option<u8>)] = &[
            ("obs high", &obs, LayerChoice::High, Some(0)),
            ("obs low", &obs, LayerChoice::Low, Some(2)),
            ("obs medium", &obs, LayerChoice::Medium, Some(1)),
            ("obs auto", &obs, LayerChoice::Auto, Some(0)),
            (
                "chrome by bitrate high",
                &chrome,
                LayerChoice::High,
                Some(2),
            ),
            ("chrome by bitrate low", &chrome, LayerChoice::Low, Some(0)),
            (
                "inactive top layer skipped",
                &top_gone,
                LayerChoice::High,
                Some(1),
            ),
            (
                "two layers medium is the lower",
                &two,
                LayerChoice::Medium,
                Some(1),
            ),
            ("nothing active", &[], LayerChoice::High, None),
        ];
        for (name, layers, choice, want) in cases {
            assert_eq!(choose(*choice, layers), *want, "{name}");
        }
    }

    #[test]
    fn choices_parse_from_query_values() {
        assert_eq!("low".parse::<LayerChoice>(), Ok(LayerChoice::Low));
        assert!("ultra".parse::<LayerChoice>().is_err());
    }
}
