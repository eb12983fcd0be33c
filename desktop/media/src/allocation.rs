//! The split of a total video bitrate over the three simulcast layers.
//!
//! The split follows libwebrtc's `SimulcastRateAllocator`, which browsers use.
//! The lowest layer is always sent. Going up, each layer first gets its target
//! rate, its share of the encoder's full bitrate ([`Layer::bitrate_share_percent`]),
//! and the next layer is sent only if what is left reaches that layer's minimum
//! ([`min_bitrate_kbps`]). A layer that is not sent stops the ones above it, and
//! the highest layer sent gets what is left. So as the total falls, the top
//! layer stops first and then the middle one, and their bits go to the layers
//! that remain instead of starving all three.
//!
//! A stopped layer starts again only when what is left reaches
//! [`RESUME_FACTOR`] times its minimum, so that a total near a threshold does not
//! switch the layer on and off with every change of the loss controller.

use crate::vp8::{Layer, SimulcastConfig};

/// How much above its minimum the bitrate left for a stopped layer must be before
/// the layer is sent again: libwebrtc's default hysteresis factor for video.
pub const RESUME_FACTOR: f64 = 1.2;

/// The minimum bitrates of libwebrtc's simulcast table (`kSimulcastFormats` in
/// `video/config/simulcast.cc`): a layer's pixel count and the lowest bitrate at
/// which a layer of that size is worth sending, in kbit/s, largest first.
const MIN_BITRATES: [(u32, u32); 6] = [
    (1920 * 1080, 800),
    (1280 * 720, 600),
    (960 * 540, 350),
    (640 * 360, 150),
    (480 * 270, 150),
    (320 * 180, 30),
];

/// Returns the lowest bitrate, in kbit/s, at which a layer of `width` by `height`
/// is worth sending. Between two sizes of [`MIN_BITRATES`] it interpolates by
/// pixel count, as libwebrtc does. Above the largest it is 800 kbit/s, and at
/// 320x180 and below 30 kbit/s, libwebrtc's values without its field trial for
/// low resolutions.
pub fn min_bitrate_kbps(width: u32, height: u32) -> u32 {
    let pixels = width * height;
    let (largest_pixels, largest_kbps) = MIN_BITRATES[0];
    if pixels >= largest_pixels {
        return largest_kbps;
    }
    for pair in MIN_BITRATES.windows(2) {
        let [(up_pixels, up_kbps), (down_pixels, down_kbps)] = [pair[0], pair[1]];
        if pixels >= down_pixels {
            let rate = f64::from(up_pixels - pixels) / f64::from(up_pixels - down_pixels);
            let kbps = f64::from(up_kbps) * (1.0 - rate) + f64::from(down_kbps) * rate;
            return kbps.round() as u32;
        }
    }
    MIN_BITRATES[MIN_BITRATES.len() - 1].1
}

/// The bitrate of each simulcast layer, in kbit/s, or `None` for a layer that is
/// not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerAllocation {
    /// In [`Layer::ALL`] order.
    rates: [Option<u32>; 3],
}

impl LayerAllocation {
    /// Returns the bitrate of `layer`, or `None` when it is not sent.
    pub fn rate_kbps(&self, layer: Layer) -> Option<u32> {
        self.rates[index(layer)]
    }

    /// Returns whether `layer` is sent.
    pub fn sends(&self, layer: Layer) -> bool {
        self.rate_kbps(layer).is_some()
    }

    /// Returns the layers that are sent, highest first.
    pub fn sent_layers(&self) -> Vec<Layer> {
        Layer::ALL
            .into_iter()
            .filter(|layer| self.sends(*layer))
            .collect()
    }

    /// Returns the sum of the layers' bitrates, in kbit/s.
    pub fn total_kbps(&self) -> u32 {
        self.rates.iter().flatten().sum()
    }
}

fn index(layer: Layer) -> usize {
    Layer::ALL
        .iter()
        .position(|known| *known == layer)
        .expect("Layer::ALL lists every layer")
}

/// Splits `total_kbps` over the layers of `config`. `previous` is the allocation
/// in effect, whose stopped layers need [`RESUME_FACTOR`] times their minimum to
/// start again, or `None` for the first allocation.
pub fn allocate(
    config: &SimulcastConfig,
    total_kbps: u32,
    previous: Option<&LayerAllocation>,
) -> LayerAllocation {
    let mut rates = [None; 3];
    let mut left = total_kbps;
    let mut top = Layer::Low;
    for layer in [Layer::Low, Layer::Medium, Layer::High] {
        let layer_config = config.layer_config(layer);
        let target = layer_config.bitrate_kbps;
        if layer != Layer::Low {
            let (width, height) = layer_config.encoded_size();
            let mut min = min_bitrate_kbps(width, height);
            if previous.is_some_and(|previous| !previous.sends(layer)) {
                min = ((f64::from(min) * RESUME_FACTOR).round() as u32).min(target);
            }
            if left < min {
                break;
            }
        }
        let rate = left.min(target);
        rates[index(layer)] = Some(rate);
        left -= rate;
        top = layer;
    }
    if let Some(rate) = &mut rates[index(top)] {
        *rate += left;
    }
    LayerAllocation { rates }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the test pattern's configuration in a call: 320x240 at 450 kbit/s,
    /// so targets of 270, 126 and 54 kbit/s and minimums of 62, 30 and 30 kbit/s.
    fn test_pattern() -> SimulcastConfig {
        SimulcastConfig::new(320, 240, 30, 450)
    }

    fn rates(allocation: &LayerAllocation) -> [Option<u32>; 3] {
        Layer::ALL.map(|layer| allocation.rate_kbps(layer))
    }

    #[test]
    fn min_bitrates_follow_the_table() {
        assert_eq!(min_bitrate_kbps(3840, 2160), 800);
        assert_eq!(min_bitrate_kbps(1280, 720), 600);
        assert_eq!(min_bitrate_kbps(640, 360), 150);
        assert_eq!(min_bitrate_kbps(320, 180), 30);
        assert_eq!(min_bitrate_kbps(80, 60), 30);
    }

    #[test]
    fn min_bitrates_interpolate_between_sizes() {
        // 76,800 pixels lie 0.733 of the way from 480x270 down to 320x180.
        assert_eq!(min_bitrate_kbps(320, 240), 62);
        // 307,200 pixels lie 0.733 of the way from 960x540 down to 640x360.
        assert_eq!(min_bitrate_kbps(640, 480), 203);
    }

    #[test]
    fn full_bitrate_sends_every_layer_at_its_share() {
        let allocation = allocate(&test_pattern(), 450, None);
        assert_eq!(rates(&allocation), [Some(270), Some(126), Some(54)]);
    }

    #[test]
    fn lower_layers_keep_their_targets() {
        let allocation = allocate(&test_pattern(), 300, None);
        assert_eq!(rates(&allocation), [Some(120), Some(126), Some(54)]);
    }

    #[test]
    fn top_layer_stops_below_its_minimum() {
        // 54 + 126 + 62 = 242 kbit/s carry all three layers, and 241 do not.
        let three = allocate(&test_pattern(), 242, None);
        assert_eq!(rates(&three), [Some(62), Some(126), Some(54)]);
        let two = allocate(&test_pattern(), 241, None);
        assert_eq!(rates(&two), [None, Some(187), Some(54)]);
    }

    #[test]
    fn middle_layer_stops_below_its_minimum() {
        let two = allocate(&test_pattern(), 84, None);
        assert_eq!(rates(&two), [None, Some(30), Some(54)]);
        let one = allocate(&test_pattern(), 83, None);
        assert_eq!(rates(&one), [None, None, Some(83)]);
    }

    #[test]
    fn allocation_spends_the_whole_total() {
        let mut previous = None;
        for total in (60..=450).rev() {
            let allocation = allocate(&test_pattern(), total, previous.as_ref());
            assert_eq!(allocation.total_kbps(), total, "{allocation:?}");
            previous = Some(allocation);
        }
    }

    #[test]
    fn stopped_layer_resumes_above_its_threshold() {
        let config = test_pattern();
        let stopped = allocate(&config, 200, None);
        assert!(!stopped.sends(Layer::High));
        // 180 kbit/s for the lower layers and 1.2 times the top layer's 62.
        let still = allocate(&config, 253, Some(&stopped));
        assert!(!still.sends(Layer::High), "{still:?}");
        let resumed = allocate(&config, 254, Some(&stopped));
        assert_eq!(resumed.rate_kbps(Layer::High), Some(74));
        // A layer that is sent keeps going down to its minimum.
        let kept = allocate(&config, 243, Some(&resumed));
        assert!(kept.sends(Layer::High), "{kept:?}");
    }

    #[test]
    fn camera_thresholds_scale_with_its_size() {
        // A 640x480 camera: targets of 1080, 504 and 216 kbit/s, minimums of
        // 203, 62 and 30 kbit/s.
        let config = SimulcastConfig::new(640, 480, 30, 1800);
        assert!(allocate(&config, 923, None).sends(Layer::High));
        assert!(!allocate(&config, 922, None).sends(Layer::High));
        assert!(allocate(&config, 278, None).sends(Layer::Medium));
        assert!(!allocate(&config, 277, None).sends(Layer::Medium));
    }

    #[test]
    fn sent_layers_list_highest_first() {
        let allocation = allocate(&test_pattern(), 200, None);
        assert_eq!(allocation.sent_layers(), vec![Layer::Medium, Layer::Low]);
    }
}
