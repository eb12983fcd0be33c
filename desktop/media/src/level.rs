//! Audio levels in dBov and active-speaker detection.

use std::collections::HashMap;
use std::hash::Hash;

/// The quietest level reported, in dBov; RFC 6464 encodes 0 to -127 dBov.
pub const MIN_DBOV: f32 = -127.0;

/// RMS level of a block of samples relative to the overload point (full scale),
/// as RFC 6464's audio level header extension carries it. A full-scale square
/// wave is 0 dBov and a full-scale sine about -3 dBov.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct AudioLevel {
    dbov: f32,
}

impl AudioLevel {
    /// Measures `samples`, all channels together.
    pub fn measure(samples: &[i16]) -> Self {
        if samples.is_empty() {
            return Self { dbov: MIN_DBOV };
        }
        let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
        let rms = (energy / samples.len() as f64).sqrt();
        let dbov = 20.0 * (rms / 32_768.0).log10();
        Self {
            dbov: (dbov as f32).clamp(MIN_DBOV, 0.0),
        }
    }

    pub fn from_dbov(dbov: f32) -> Self {
        Self {
            dbov: dbov.clamp(MIN_DBOV, 0.0),
        }
    }

    pub fn dbov(self) -> f32 {
        self.dbov
    }

    /// Returns the 7-bit value of the RFC 6464 header extension: 0 is loudest,
    /// 127 silence.
    pub fn rfc6464(self) -> u8 {
        (-self.dbov).round().clamp(0.0, 127.0) as u8
    }
}

/// Level below which a stream counts as silent for speaker detection, in dBov.
/// Speech at a normal distance measures about -20 to -40 dBov; room noise
/// through noise suppression stays below -50.
pub const SPEAKING_THRESHOLD_DBOV: f32 = -50.0;

/// How much louder, in dB, another stream must be to take over from the current
/// active speaker, so short overlaps do not flip the highlight.
pub const SWITCH_MARGIN_DB: f32 = 6.0;

/// Weight of each new level in the moving average; at one level per 20 ms frame,
/// 0.1 averages over about 200 ms.
const SMOOTHING: f32 = 0.1;

/// Picks the active speaker from per-stream levels, keyed by any id.
#[derive(Debug)]
pub struct SpeakerDetector<K> {
    smoothed: HashMap<K, f32>,
    active: Option<K>,
}

impl<K: Clone + Eq + Hash> SpeakerDetector<K> {
    pub fn new() -> Self {
        Self {
            smoothed: HashMap::new(),
            active: None,
        }
    }

    /// Feeds one level of stream `id` (one per 20 ms frame).
    pub fn update(&mut self, id: K, level: AudioLevel) {
        let entry = self.smoothed.entry(id).or_insert(MIN_DBOV);
        *entry += SMOOTHING * (level.dbov() - *entry);
        self.choose();
    }

    /// Forgets a stream that left.
    pub fn remove(&mut self, id: &K) {
        self.smoothed.remove(id);
        if self.active.as_ref() == Some(id) {
            self.active = None;
        }
        self.choose();
    }

    /// Returns the stream speaking now, if any is above the threshold.
    pub fn active(&self) -> Option<&K> {
        self.active.as_ref()
    }

    /// Returns the smoothed level of a stream, in dBov.
    pub fn smoothed_dbov(&self, id: &K) -> Option<f32> {
        self.smoothed.get(id).copied()
    }

    fn choose(&mut self) {
        let loudest = self
            .smoothed
            .iter()
            .filter(|(_, level)| **level >= SPEAKING_THRESHOLD_DBOV)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, &level)| (id.clone(), level));
        let current = self
            .active
            .as_ref()
            .and_then(|id| self.smoothed.get(id).map(|&level| (id.clone(), level)))
            .filter(|(_, level)| *level >= SPEAKING_THRESHOLD_DBOV);
        self.active = match (current, loudest) {
            (Some((current, current_level)), Some((loudest, loudest_level))) => {
                if loudest_level > current_level + SWITCH_MARGIN_DB {
                    Some(loudest)
                } else {
                    Some(current)
                }
            }
            (None, Some((loudest, _))) => Some(loudest),
            (_, None) => None,
        };
    }
}

impl<K: Clone + Eq + Hash> Default for SpeakerDetector<K> {
    fn default() -> Self {
        Self::new()
    }
}
