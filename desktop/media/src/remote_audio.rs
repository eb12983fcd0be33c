//! One remote audio stream on the receiving side: jitter buffer, Opus decoder
//! with concealment and FEC, and the stream's level.

use bytes::Bytes;

use crate::error::CodecError;
use crate::frame::AudioFrame;
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout, PushOutcome};
use crate::level::{AudioLevel, MIN_DBOV};
use crate::opus::OpusDecoder;

/// Turns the RTP payloads of one remote participant into 20 ms frames. Call
/// [`RemoteAudio::push`] as packets arrive and [`RemoteAudio::next_frame`] once
/// per 20 ms playout tick.
pub struct RemoteAudio {
    jitter: JitterBuffer,
    decoder: OpusDecoder,
    level: AudioLevel,
    recovered_by_fec: u64,
}

impl RemoteAudio {
    pub fn new(channels: u16, config: JitterConfig) -> Result<Self, CodecError> {
        Ok(Self {
            jitter: JitterBuffer::new(config),
            decoder: OpusDecoder::new(channels)?,
            level: AudioLevel::from_dbov(MIN_DBOV),
            recovered_by_fec: 0,
        })
    }

    /// Adds a received RTP payload.
    pub fn push(&mut self, sequence: u16, timestamp: u32, payload: Bytes) -> PushOutcome {
        self.jitter.push(sequence, timestamp, payload)
    }

    /// Returns the frame for this tick, or `None` when the stream has nothing to
    /// play (still buffering, or silent through DTX), which mixes as silence.
    /// A lost packet is rebuilt from the next packet's FEC data when that packet
    /// is already here, else concealed.
    pub fn next_frame(&mut self) -> Result<Option<AudioFrame>, CodecError> {
        let frame = match self.jitter.pop() {
            Playout::Packet(packet) => self.decoder.decode(Some(&packet.payload), false)?,
            Playout::Missing {
                following: Some(next),
                ..
            } => {
                self.recovered_by_fec += 1;
                self.decoder.decode(Some(&next.payload), true)?
            }
            Playout::Missing {
                following: None, ..
            } => self.decoder.decode(None, false)?,
            Playout::Empty | Playout::Buffering => {
                self.level = AudioLevel::from_dbov(MIN_DBOV);
                return Ok(None);
            }
        };
        self.level = AudioLevel::measure(&frame.samples);
        Ok(Some(frame))
    }

    /// Returns the level of the last frame, for active-speaker detection.
    pub fn level(&self) -> AudioLevel {
        self.level
    }

    pub fn jitter_stats(&self) -> JitterStats {
        self.jitter.stats()
    }

    /// Returns how many lost packets were rebuilt from FEC data (the rest of
    /// `jitter_stats().concealed` were concealed).
    pub fn recovered_by_fec(&self) -> u64 {
        self.recovered_by_fec
    }
}
