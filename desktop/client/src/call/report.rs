//! The report of a headless participant after a call, as `roomler call --stats`
//! writes it: its ids, the tone it sent, and what arrived from each other
//! participant.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::feedback::SentStats;
use super::peer::RemoteStats;
use super::{CallFormat, CallRole};

/// Lowest and highest tone frequency that a participant may send, in Hz. They lie
/// inside the 50 to 12,000 Hz that `roomler_media::detect_tone` searches, and in
/// the band that Opus at 32 kbit/s keeps clean.
pub const TONE_MIN_HZ: f32 = 100.0;
pub const TONE_MAX_HZ: f32 = 8_000.0;

/// The statistics of one participant's stay in a call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallReport {
    pub room_id: Uuid,
    pub call_id: Uuid,
    pub user_id: Uuid,
    pub feed_id: u64,
    /// Frequency of the tone this participant sent, in Hz.
    pub tone_hz: f32,
    /// Time spent in the call, in seconds.
    pub seconds: f64,
    /// Time from the start of the join until the media was published, in
    /// milliseconds.
    #[serde(default)]
    pub join_ms: f64,
    /// One entry per other participant whose streams arrived, by feed id.
    pub remotes: Vec<RemoteStats>,
    /// The effects of Janus's feedback on this participant's video.
    #[serde(default)]
    pub sent: SentStats,
    /// The call's format and this participant's role at the end of the stay.
    #[serde(default)]
    pub format: Option<CallFormat>,
    #[serde(default)]
    pub role: Option<CallRole>,
    /// Whether this participant's media reached the media server: its publishing
    /// connection's ICE connected. False in the audience, which publishes nothing.
    #[serde(default)]
    pub media_published: bool,
}

/// Returns the tone of a participant that was given none: one of 55 frequencies
/// from 300 to 3,000 Hz in steps of 50 Hz, picked by the user id, so that bots
/// started without `--tone-hz` usually differ. Give each one its own frequency
/// where they must differ.
pub fn default_tone_hz(user_id: Uuid) -> f32 {
    let step = user_id.as_u128() % 55;
    300.0 + 50.0 * step as f32
}

/// Checks a tone frequency given on the command line.
pub fn check_tone_hz(tone_hz: f32) -> Result<f32, String> {
    if tone_hz.is_finite() && (TONE_MIN_HZ..=TONE_MAX_HZ).contains(&tone_hz) {
        return Ok(tone_hz);
    }
    Err(format!(
        "tone frequency {tone_hz} Hz is outside {TONE_MIN_HZ}..={TONE_MAX_HZ} Hz; \
         pick one in that range, e.g. 440"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tone_stays_in_range() {
        for seed in [0u128, 54, 55, u128::MAX] {
            let tone = default_tone_hz(Uuid::from_u128(seed));
            assert!((300.0..=3_000.0).contains(&tone), "{tone}");
        }
        assert_eq!(default_tone_hz(Uuid::from_u128(1)), 350.0);
    }

    #[test]
    fn tone_check_rejects_out_of_range() {
        assert_eq!(check_tone_hz(440.0), Ok(440.0));
        assert!(check_tone_hz(20.0).unwrap_err().contains("20 Hz"));
        assert!(check_tone_hz(f32::NAN).is_err());
    }
}
