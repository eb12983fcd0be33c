//! Opus encoding and decoding of 20 ms frames, with in-band FEC and DTX.

use std::time::Duration;

use bytes::Bytes;

use crate::error::CodecError;
use crate::frame::{AudioFrame, SAMPLE_RATE, SAMPLES_PER_FRAME};

/// Largest Opus packet the encoder writes; RFC 6716 caps a packet at 1275 bytes
/// per frame.
const MAX_PACKET: usize = 1275;

/// Packets of at most this many bytes carry no audio: in DTX, libopus emits a
/// 1-byte (TOC only) packet for each silent frame, and WebRTC does not send them.
const DTX_PACKET_MAX: usize = 2;

/// Maximum packet duration of Opus (120 ms), in samples per channel at 48 kHz.
const MAX_FRAME_SAMPLES: usize = 5_760;

/// Expected loss, in percent, that the encoder plans FEC for until
/// [`OpusEncoder::set_packet_loss`] reports a measured value. libopus adds FEC
/// data only when this is above zero.
pub const DEFAULT_EXPECTED_LOSS_PERCENT: u8 = 10;

/// Opus encoder for voice: VoIP mode, in-band FEC and DTX on.
pub struct OpusEncoder {
    encoder: ::opus::Encoder,
    channels: u16,
}

impl OpusEncoder {
    /// Creates an encoder for 1 or 2 channels at `bitrate` bits per second
    /// (6,000 to 510,000; 32,000 is a good voice default).
    pub fn new(channels: u16, bitrate: u32) -> Result<Self, CodecError> {
        let layout = opus_channels(channels)?;
        if !(6_000..=510_000).contains(&bitrate) {
            return Err(CodecError::InvalidConfig(format!(
                "Opus bitrate {bitrate} b/s is outside 6000..=510000"
            )));
        }
        let mut encoder = ::opus::Encoder::new(SAMPLE_RATE, layout, ::opus::Application::Voip)?;
        encoder.set_bitrate(::opus::Bitrate::Bits(bitrate as i32))?;
        encoder.set_inband_fec(true)?;
        encoder.set_packet_loss_perc(i32::from(DEFAULT_EXPECTED_LOSS_PERCENT))?;
        encoder.set_dtx(true)?;
        Ok(Self { encoder, channels })
    }

    /// Encodes one 20 ms frame. Returns `None` when DTX found the frame silent
    /// and there is nothing to send.
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Option<Bytes>, CodecError> {
        let expected = SAMPLES_PER_FRAME * self.channels as usize;
        if frame.samples.len() != expected || frame.channels != self.channels {
            return Err(CodecError::AudioFrameLength {
                expected,
                got: frame.samples.len(),
            });
        }
        let packet = self.encoder.encode_vec(&frame.samples, MAX_PACKET)?;
        if packet.len() <= DTX_PACKET_MAX {
            return Ok(None);
        }
        Ok(Some(Bytes::from(packet)))
    }

    /// Sets the target bitrate in bits per second, for loss-based adaptation.
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), CodecError> {
        let bitrate = bitrate.clamp(6_000, 510_000);
        self.encoder
            .set_bitrate(::opus::Bitrate::Bits(bitrate as i32))?;
        Ok(())
    }

    /// Tells the encoder the measured packet loss, in percent, so it sizes FEC.
    pub fn set_packet_loss(&mut self, percent: u8) -> Result<(), CodecError> {
        self.encoder
            .set_packet_loss_perc(i32::from(percent.min(100)))?;
        Ok(())
    }
}

/// Opus decoder that produces 20 ms frames, conceals lost packets and recovers
/// them from the next packet's FEC data.
pub struct OpusDecoder {
    decoder: ::opus::Decoder,
    channels: u16,
    /// Samples per channel decoded so far; frame timestamps derive from it.
    position: u64,
    buffer: Vec<i16>,
}

impl OpusDecoder {
    pub fn new(channels: u16) -> Result<Self, CodecError> {
        let layout = opus_channels(channels)?;
        Ok(Self {
            decoder: ::opus::Decoder::new(SAMPLE_RATE, layout)?,
            channels,
            position: 0,
            buffer: vec![0; MAX_FRAME_SAMPLES * channels as usize],
        })
    }

    /// Decodes one packet into a frame.
    ///
    /// - `Some(packet)`, `fec = false`: the packet's own audio.
    /// - `Some(next)`, `fec = true`: the lost frame before `next`, rebuilt from
    ///   the FEC data `next` carries (concealment if it carries none).
    /// - `None`: a lost packet, filled by packet-loss concealment.
    pub fn decode(&mut self, packet: Option<&[u8]>, fec: bool) -> Result<AudioFrame, CodecError> {
        let channels = self.channels as usize;
        let samples = match packet {
            Some(data) if !fec => self.decoder.decode(data, &mut self.buffer, false)?,
            // FEC and concealment must ask for exactly the lost duration.
            Some(data) => {
                let out = &mut self.buffer[..SAMPLES_PER_FRAME * channels];
                self.decoder.decode(data, out, true)?
            }
            None => {
                let out = &mut self.buffer[..SAMPLES_PER_FRAME * channels];
                self.decoder.decode(&[], out, false)?
            }
        };
        let timestamp = Duration::from_secs_f64(self.position as f64 / f64::from(SAMPLE_RATE));
        self.position += samples as u64;
        Ok(AudioFrame {
            sample_rate: SAMPLE_RATE,
            channels: self.channels,
            samples: self.buffer[..samples * channels].to_vec(),
            timestamp,
        })
    }
}

fn opus_channels(channels: u16) -> Result<::opus::Channels, CodecError> {
    match channels {
        1 => Ok(::opus::Channels::Mono),
        2 => Ok(::opus::Channels::Stereo),
        other => Err(CodecError::InvalidConfig(format!(
            "Opus takes 1 or 2 channels, not {other}"
        ))),
    }
}
