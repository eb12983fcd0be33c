//! VP8 through libvpx: an encoder on its own thread, a three-layer simulcast
//! encoder, and a decoder.
//!
//! Each encoder runs on a dedicated OS thread and receives frames over a bounded
//! channel, so an encode does not run on the caller's thread. When a thread
//! falls behind, new frames are dropped rather than queued without bound.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use roomler_vpx::{Decoder, Encoder, EncoderSettings};

use crate::allocation::{LayerAllocation, allocate};
use crate::error::CodecError;
use crate::frame::VideoFrame;

/// RTP clock rate of video, 90 kHz; encoder timestamps use it as their time base.
const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Frames that may wait for an encoder thread; more are dropped. Two keeps latency
/// at most about two frame times beyond the encode itself.
const ENCODER_QUEUE: usize = 2;

/// libvpx speed setting for real time: negative values in -16..=-1 pick a speed
/// that adapts to the deadline; -6 is what libwebrtc uses on desktop machines.
const CPU_USED: i32 = -6;

/// A simulcast layer, named by its RTP stream id (RID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Full resolution, RID "h".
    High,
    /// Half width and height, RID "m".
    Medium,
    /// Quarter width and height, RID "l".
    Low,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::High, Layer::Medium, Layer::Low];

    /// Returns the RID that the SDP and RTP header extension use for this layer.
    pub fn rid(self) -> &'static str {
        match self {
            Layer::High => "h",
            Layer::Medium => "m",
            Layer::Low => "l",
        }
    }

    /// Returns how many times the source frame is halved for this layer.
    pub fn halvings(self) -> u32 {
        match self {
            Layer::High => 0,
            Layer::Medium => 1,
            Layer::Low => 2,
        }
    }

    /// Returns this layer's share of a simulcast bitrate, in percent. The split
    /// follows the pixel counts loosely, as libwebrtc's defaults do (for 640x360:
    /// about 500, 230 and 100 kb/s of 830).
    pub fn bitrate_share_percent(self) -> u32 {
        match self {
            Layer::High => 60,
            Layer::Medium => 28,
            Layer::Low => 12,
        }
    }

    /// Returns the layer for a RID, `None` for an unknown one.
    pub fn from_rid(rid: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|layer| layer.rid() == rid)
    }
}

/// Settings of one VP8 encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Config {
    /// Size of the frames the encoder is given; each [`Layer`] below `High` halves
    /// them before encoding.
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Target bitrate of the encoded stream, in kbit/s.
    pub bitrate_kbps: u32,
    pub layer: Layer,
    /// Frames between forced keyframes, or `None` to send them only on request
    /// (PLI or FIR), as WebRTC does.
    pub keyframe_interval: Option<u32>,
}

impl Vp8Config {
    /// Creates a single-layer configuration at full resolution.
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Self {
        Self {
            width,
            height,
            fps,
            bitrate_kbps,
            layer: Layer::High,
            keyframe_interval: None,
        }
    }

    /// Returns the size this configuration encodes at, after the layer's scaling.
    pub fn encoded_size(&self) -> (u32, u32) {
        let (mut width, mut height) = (self.width, self.height);
        for _ in 0..self.layer.halvings() {
            width = (width / 2) & !1;
            height = (height / 2) & !1;
        }
        (width, height)
    }

    fn validate(&self) -> Result<(), CodecError> {
        let (width, height) = self.encoded_size();
        if width < 16
            || height < 16
            || !self.width.is_multiple_of(2)
            || !self.height.is_multiple_of(2)
        {
            return Err(CodecError::InvalidConfig(format!(
                "VP8 {:?} layer of {}x{} would be {width}x{height}; \
                 use even sizes of at least 16x16 per layer",
                self.layer, self.width, self.height
            )));
        }
        if self.fps == 0 || self.fps > 120 {
            return Err(CodecError::InvalidConfig(format!(
                "VP8 frame rate {} is outside 1..=120",
                self.fps
            )));
        }
        if self.bitrate_kbps < 10 {
            return Err(CodecError::InvalidConfig(format!(
                "VP8 bitrate {} kbit/s is below the minimum of 10",
                self.bitrate_kbps
            )));
        }
        Ok(())
    }
}

/// One encoded VP8 frame of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVideo {
    pub data: Bytes,
    pub keyframe: bool,
    /// The source frame's timestamp.
    pub timestamp: Duration,
    pub layer: Layer,
    pub width: u32,
    pub height: u32,
}

/// Output of an encoder thread: an encoded frame, or the error that stopped it.
pub type EncoderOutput = Result<EncodedVideo, CodecError>;

enum Command {
    Encode {
        frame: Arc<VideoFrame>,
        force_keyframe: bool,
    },
    SetBitrate(u32),
}

/// The sending side of one encoder thread.
struct EncoderThread {
    commands: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EncoderThread {
    fn spawn(config: Vp8Config, output: Sender<EncoderOutput>) -> Result<Self, CodecError> {
        config.validate()?;
        let (commands, inbox) = mpsc::sync_channel(ENCODER_QUEUE);
        let (ready_tx, ready_rx) = mpsc::channel();
        let name = format!("vp8-encode-{}", config.layer.rid());
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut state = match LayerEncoder::new(config) {
                    Ok(state) => {
                        let _ = ready_tx.send(Ok(()));
                        state
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                        return;
                    }
                };
                state.run(inbox, output);
            })
            .map_err(|err| {
                CodecError::InvalidConfig(format!("spawning the encoder thread: {err}"))
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                commands: Some(commands),
                thread: Some(thread),
            }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(CodecError::Stopped),
        }
    }

    fn send(&self, command: Command) -> Result<(), CodecError> {
        let commands = self.commands.as_ref().ok_or(CodecError::Stopped)?;
        match commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(CodecError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(CodecError::Stopped),
        }
    }

    /// Sends a bitrate change, waiting for queue space: unlike a frame, it must
    /// not be dropped.
    fn send_blocking(&self, command: Command) -> Result<(), CodecError> {
        let commands = self.commands.as_ref().ok_or(CodecError::Stopped)?;
        commands.send(command).map_err(|_| CodecError::Stopped)
    }
}

impl Drop for EncoderThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after the frame in progress.
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// State owned by an encoder thread.
struct LayerEncoder {
    config: Vp8Config,
    /// Size the libvpx encoder was created for, which follows the input frames.
    source_size: (u32, u32),
    encoder: Encoder,
}

impl LayerEncoder {
    fn new(config: Vp8Config) -> Result<Self, CodecError> {
        let (width, height) = config.encoded_size();
        let encoder = create_libvpx_encoder(&config, width, height)?;
        Ok(Self {
            source_size: (config.width, config.height),
            config,
            encoder,
        })
    }

    fn run(&mut self, inbox: Receiver<Command>, output: Sender<EncoderOutput>) {
        while let Ok(command) = inbox.recv() {
            let result = match command {
                Command::Encode {
                    frame,
                    force_keyframe,
                } => self.encode(&frame, force_keyframe, &output),
                Command::SetBitrate(kbps) => self.set_bitrate(kbps),
            };
            if let Err(err) = result {
                tracing::warn!(layer = self.config.layer.rid(), error = %err, "VP8 encoder failed");
                if output.send(Err(err)).is_err() {
                    return;
                }
            }
        }
    }

    fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
        output: &Sender<EncoderOutput>,
    ) -> Result<(), CodecError> {
        let mut force_keyframe = force_keyframe;
        if (frame.width, frame.height) != self.source_size {
            // A camera switch changes the size; a new encoder starts with a keyframe.
            tracing::debug!(
                layer = self.config.layer.rid(),
                width = frame.width,
                height = frame.height,
                "VP8 input size changed, recreating the encoder"
            );
            let mut config = self.config.clone();
            config.width = frame.width;
            config.height = frame.height;
            config.validate()?;
            let (width, height) = config.encoded_size();
            self.encoder = create_libvpx_encoder(&config, width, height)?;
            self.config = config;
            self.source_size = (frame.width, frame.height);
            force_keyframe = true;
        }

        let mut scaled: Option<VideoFrame> = None;
        for _ in 0..self.config.layer.halvings() {
            let next = scaled.as_ref().unwrap_or(frame).downscale_half();
            scaled = Some(next);
        }
        let input = scaled.as_ref().unwrap_or(frame);
        self.encode_scaled(input, frame.timestamp, force_keyframe, output)
    }

    fn encode_scaled(
        &mut self,
        input: &VideoFrame,
        timestamp: Duration,
        force_keyframe: bool,
        output: &Sender<EncoderOutput>,
    ) -> Result<(), CodecError> {
        let pts = (timestamp.as_secs_f64() * f64::from(VIDEO_CLOCK_RATE)) as i64;
        let duration = u64::from(VIDEO_CLOCK_RATE / self.config.fps);
        let packets = self
            .encoder
            .encode(&input.data, pts, duration, force_keyframe)?;
        for packet in packets {
            let encoded = EncodedVideo {
                data: Bytes::from(packet.data),
                keyframe: packet.keyframe,
                timestamp,
                layer: self.config.layer,
                width: input.width,
                height: input.height,
            };
            if output.send(Ok(encoded)).is_err() {
                return Err(CodecError::Stopped);
            }
        }
        Ok(())
    }

    fn set_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        let kbps = kbps.max(10);
        self.encoder.set_bitrate(kbps)?;
        self.config.bitrate_kbps = kbps;
        Ok(())
    }
}

fn create_libvpx_encoder(
    config: &Vp8Config,
    width: u32,
    height: u32,
) -> Result<Encoder, CodecError> {
    let settings = EncoderSettings {
        width,
        height,
        fps: config.fps,
        bitrate_kbps: config.bitrate_kbps,
        keyframe_interval: config.keyframe_interval,
        cpu_used: CPU_USED,
        // One thread per layer: the three layers already run on three threads.
        threads: 1,
    };
    Ok(Encoder::new(&settings)?)
}

/// A single-layer VP8 encoder on its own thread. The libvpx context lives on
/// that thread for its whole life.
pub struct Vp8Encoder {
    thread: EncoderThread,
    output: Receiver<EncoderOutput>,
}

impl Vp8Encoder {
    /// Starts the encoder thread. Fails when libvpx rejects the configuration.
    pub fn spawn(config: Vp8Config) -> Result<Self, CodecError> {
        let (sender, output) = mpsc::channel();
        let thread = EncoderThread::spawn(config, sender)?;
        Ok(Self { thread, output })
    }

    /// Queues a frame. Returns [`CodecError::QueueFull`] when the thread is behind,
    /// and the frame is then dropped.
    pub fn encode(&self, frame: VideoFrame, force_keyframe: bool) -> Result<(), CodecError> {
        self.thread.send(Command::Encode {
            frame: Arc::new(frame),
            force_keyframe,
        })
    }

    /// Sets the target bitrate in kbit/s.
    pub fn set_bitrate(&self, kbps: u32) -> Result<(), CodecError> {
        self.thread.send_blocking(Command::SetBitrate(kbps))
    }

    /// Returns the receiver of encoded frames, in order, and of any error that
    /// stopped the thread.
    pub fn output(&self) -> &Receiver<EncoderOutput> {
        &self.output
    }

    /// Waits up to `timeout` for the next encoded frame.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EncodedVideo, CodecError> {
        recv_output(&self.output, timeout)
    }
}

fn recv_output(
    output: &Receiver<EncoderOutput>,
    timeout: Duration,
) -> Result<EncodedVideo, CodecError> {
    match output.recv_timeout(timeout) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(CodecError::TimedOut(timeout)),
        Err(RecvTimeoutError::Disconnected) => Err(CodecError::Stopped),
    }
}

/// Settings of a simulcast encoder: the full-size stream and its total bitrate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulcastConfig {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// The full bitrate of the three layers together, in kbit/s. Each layer's
    /// share of it ([`Layer::bitrate_share_percent`]) is the layer's target in
    /// [`allocate`].
    pub total_bitrate_kbps: u32,
    pub keyframe_interval: Option<u32>,
}

impl SimulcastConfig {
    pub fn new(width: u32, height: u32, fps: u32, total_bitrate_kbps: u32) -> Self {
        Self {
            width,
            height,
            fps,
            total_bitrate_kbps,
            keyframe_interval: None,
        }
    }

    /// Returns the configuration of one layer's encoder.
    pub fn layer_config(&self, layer: Layer) -> Vp8Config {
        Vp8Config {
            width: self.width,
            height: self.height,
            fps: self.fps,
            bitrate_kbps: layer_bitrate(self.total_bitrate_kbps, layer),
            layer,
            keyframe_interval: self.keyframe_interval,
        }
    }
}

fn layer_bitrate(total_kbps: u32, layer: Layer) -> u32 {
    (total_kbps * layer.bitrate_share_percent() / 100).max(10)
}

/// Three VP8 encoders, one thread each, for the layers "h", "m" and "l". Each
/// thread scales the shared source frame to its own size. The total bitrate is
/// split by [`allocate`], so a total too low for the top layer, or for the top
/// two, stops them.
pub struct SimulcastEncoder {
    config: SimulcastConfig,
    layers: Vec<(Layer, EncoderThread)>,
    output: Receiver<EncoderOutput>,
    /// Layers that no subscriber receives and that are therefore not encoded.
    paused: Vec<Layer>,
    /// The bitrate of each layer, and the layers the total does not carry.
    allocation: LayerAllocation,
    /// Layers that start again with a keyframe at their next frame.
    resumed: Vec<Layer>,
}

impl SimulcastEncoder {
    /// Starts the three encoder threads. A layer that the configured total does
    /// not carry is not encoded until a higher total from
    /// [`SimulcastEncoder::set_bitrate`] allows it.
    pub fn spawn(config: SimulcastConfig) -> Result<Self, CodecError> {
        let (sender, output) = mpsc::channel();
        let allocation = allocate(&config, config.total_bitrate_kbps, None);
        let mut layers = Vec::with_capacity(3);
        for layer in Layer::ALL {
            let mut layer_config = config.layer_config(layer);
            if let Some(kbps) = allocation.rate_kbps(layer) {
                layer_config.bitrate_kbps = kbps.max(10);
            }
            let thread = EncoderThread::spawn(layer_config, sender.clone())?;
            layers.push((layer, thread));
        }
        Ok(Self {
            config,
            layers,
            output,
            paused: Vec::new(),
            allocation,
            resumed: Vec::new(),
        })
    }

    /// Queues a frame for every layer that is sent and not paused. A layer whose
    /// thread is behind drops this frame, and the others still encode it. Returns
    /// the layers that dropped it. A layer that starts again after the bitrate
    /// stopped it gets a keyframe.
    pub fn encode(
        &mut self,
        frame: VideoFrame,
        force_keyframe: bool,
    ) -> Result<Vec<Layer>, CodecError> {
        let frame = Arc::new(frame);
        let mut dropped = Vec::new();
        for (layer, thread) in &self.layers {
            if self.paused.contains(layer) || !self.allocation.sends(*layer) {
                continue;
            }
            let command = Command::Encode {
                frame: Arc::clone(&frame),
                force_keyframe: force_keyframe || self.resumed.contains(layer),
            };
            match thread.send(command) {
                Ok(()) => self.resumed.retain(|resumed| resumed != layer),
                Err(CodecError::QueueFull) => dropped.push(*layer),
                Err(err) => return Err(err),
            }
        }
        Ok(dropped)
    }

    /// Splits a new total bitrate, in kbit/s, over the layers with [`allocate`].
    /// A layer the new total does not carry stops, and one it carries again
    /// resumes with a keyframe. Returns the new allocation.
    pub fn set_bitrate(&mut self, total_kbps: u32) -> Result<LayerAllocation, CodecError> {
        let allocation = allocate(&self.config, total_kbps, Some(&self.allocation));
        for (layer, thread) in &self.layers {
            let Some(kbps) = allocation.rate_kbps(*layer) else {
                continue;
            };
            thread.send_blocking(Command::SetBitrate(kbps))?;
            if !self.allocation.sends(*layer) && !self.resumed.contains(layer) {
                self.resumed.push(*layer);
            }
        }
        self.allocation = allocation;
        Ok(allocation)
    }

    /// Returns the bitrate of each layer as the last total was split.
    pub fn allocation(&self) -> LayerAllocation {
        self.allocation
    }

    /// Stops or resumes encoding one layer, for example when no subscriber takes
    /// the high layer. A resumed layer should be sent a keyframe.
    pub fn set_layer_active(&mut self, layer: Layer, active: bool) {
        self.paused.retain(|paused| *paused != layer);
        if !active {
            self.paused.push(layer);
        }
    }

    /// Returns the receiver of the encoded frames of all layers; each frame
    /// carries its [`Layer`].
    pub fn output(&self) -> &Receiver<EncoderOutput> {
        &self.output
    }

    /// Waits up to `timeout` for the next encoded frame of any layer.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EncodedVideo, CodecError> {
        recv_output(&self.output, timeout)
    }
}

/// A VP8 decoder. It is `Send`, so it can live on a decoding thread of the call
/// engine's choice. A decode takes milliseconds, which is too long for an async
/// worker.
pub struct Vp8Decoder {
    decoder: Decoder,
}

impl Vp8Decoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: Decoder::new()?,
        })
    }

    /// Decodes one whole VP8 frame, as depacketized from RTP. Returns `None` when
    /// the frame produced no picture to show. The returned frame's timestamp is
    /// zero: the caller knows it from RTP.
    pub fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, CodecError> {
        let Some(decoded) = self.decoder.decode(data)? else {
            return Ok(None);
        };
        Ok(Some(VideoFrame {
            width: decoded.width,
            height: decoded.height,
            data: decoded.data,
            timestamp: Duration::ZERO,
        }))
    }
}
