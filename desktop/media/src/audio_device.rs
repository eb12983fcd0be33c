//! Microphones and speakers through cpal (ALSA on Linux).
//!
//! A cpal stream is not `Send`, so each open device runs its stream on a thread
//! of its own and exchanges samples with the caller over channels.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};

use crate::error::{DeviceKind, SinkError, SourceError};
use crate::frame::{AudioFormat, AudioFrame, SAMPLE_RATE, SAMPLES_PER_FRAME};
use crate::playback::AudioSink;
use crate::source::{AudioSource, DeviceInfo};

/// A microphone that delivers nothing for this long counts as lost.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(2);

/// Capture chunks that may wait for the reader. At any usual buffer size, 100
/// callbacks are seconds of audio, so beyond that the reader is stuck and new
/// chunks are dropped.
const CAPTURE_QUEUE: usize = 100;

/// Output queued for the speaker, 200 ms at 48 kHz. Beyond it the oldest samples
/// are dropped, which bounds the playback latency.
const PLAYBACK_BUFFER_SAMPLES_PER_CHANNEL: usize = 9_600;

/// Lists the microphones of the default host. An empty list is no error.
pub fn list_microphones() -> Result<Vec<DeviceInfo>, SourceError> {
    let host = cpal::default_host();
    let default_name = host.default_input_device().and_then(|d| d.name().ok());
    let devices = host
        .input_devices()
        .map_err(|err| backend(DeviceKind::Microphone, err))?;
    Ok(describe(devices, DeviceKind::Microphone, default_name))
}

/// Lists the speakers of the default host. An empty list is no error.
pub fn list_speakers() -> Result<Vec<DeviceInfo>, SourceError> {
    let host = cpal::default_host();
    let default_name = host.default_output_device().and_then(|d| d.name().ok());
    let devices = host
        .output_devices()
        .map_err(|err| backend(DeviceKind::Speaker, err))?;
    Ok(describe(devices, DeviceKind::Speaker, default_name))
}

fn describe(
    devices: impl Iterator<Item = cpal::Device>,
    kind: DeviceKind,
    default_name: Option<String>,
) -> Vec<DeviceInfo> {
    devices
        .filter_map(|device| device.name().ok())
        .map(|name| DeviceInfo {
            kind,
            is_default: default_name.as_deref() == Some(name.as_str()),
            description: String::new(),
            name,
        })
        .collect()
}

fn backend(kind: DeviceKind, err: impl std::fmt::Display) -> SourceError {
    SourceError::Backend {
        kind,
        reason: err.to_string(),
    }
}

/// Finds an input (`kind` Microphone) or output device by name, or the default one.
fn find_device(kind: DeviceKind, name: Option<&str>) -> Result<cpal::Device, SourceError> {
    let host = cpal::default_host();
    let no_device = || SourceError::NoDevice {
        kind,
        requested: name.map(str::to_owned),
    };
    let mut devices: Vec<cpal::Device> = match kind {
        DeviceKind::Microphone => host
            .input_devices()
            .map_err(|err| backend(kind, err))?
            .collect(),
        _ => host
            .output_devices()
            .map_err(|err| backend(kind, err))?
            .collect(),
    };
    let Some(name) = name else {
        // ALSA names a "default" device even without any sound card, and opening
        // it fails, so an empty device list is what decides "no device".
        if devices.is_empty() {
            return Err(no_device());
        }
        let default = match kind {
            DeviceKind::Microphone => host.default_input_device(),
            _ => host.default_output_device(),
        };
        return Ok(default.unwrap_or_else(|| devices.remove(0)));
    };
    devices
        .into_iter()
        .find(|device| device.name().is_ok_and(|n| n == name))
        .ok_or_else(no_device)
}

/// Picks a 48 kHz configuration, preferring 16-bit and float samples.
fn pick_config(
    device: &cpal::Device,
    kind: DeviceKind,
    name: &str,
) -> Result<(cpal::StreamConfig, SampleFormat), SourceError> {
    let ranges: Vec<cpal::SupportedStreamConfigRange> = match kind {
        DeviceKind::Microphone => device
            .supported_input_configs()
            .map_err(|err| backend(kind, err))?
            .collect(),
        _ => device
            .supported_output_configs()
            .map_err(|err| backend(kind, err))?
            .collect(),
    };
    let rate = cpal::SampleRate(SAMPLE_RATE);
    let preference = |format: SampleFormat| match format {
        SampleFormat::I16 => 0,
        SampleFormat::F32 => 1,
        _ => 2,
    };
    let chosen = ranges
        .into_iter()
        .filter(|range| range.min_sample_rate() <= rate && rate <= range.max_sample_rate())
        .filter(|range| range.channels() >= 1 && range.channels() <= 2)
        .min_by_key(|range| preference(range.sample_format()))
        .ok_or_else(|| SourceError::Unsupported {
            kind,
            name: name.to_owned(),
            // TODO: resample devices that lack 48 kHz instead of rejecting them.
            reason: "no 48 kHz configuration with 1 or 2 channels".into(),
        })?;
    let format = chosen.sample_format();
    Ok((chosen.with_sample_rate(rate).config(), format))
}

/// A microphone through cpal, delivering mono 20 ms frames.
pub struct CpalMicrophone {
    name: String,
    chunks: Receiver<Vec<i16>>,
    pending: VecDeque<i16>,
    lost: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    position: u64,
}

impl CpalMicrophone {
    /// Opens the microphone called `name`, or the default one. Returns
    /// [`SourceError::NoDevice`] when none exists.
    pub fn open(name: Option<&str>) -> Result<Self, SourceError> {
        let kind = DeviceKind::Microphone;
        let device = find_device(kind, name)?;
        let name = device.name().unwrap_or_else(|_| "unnamed".into());
        let (config, format) = pick_config(&device, kind, &name)?;

        let (chunk_tx, chunks) = mpsc::sync_channel(CAPTURE_QUEUE);
        let lost = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (lost, stop, name) = (Arc::clone(&lost), Arc::clone(&stop), name.clone());
            std::thread::Builder::new()
                .name("microphone".into())
                .spawn(move || {
                    let stream = build_input(&device, &config, format, chunk_tx, Arc::clone(&lost));
                    let stream = match stream.and_then(|stream| {
                        stream.play().map_err(|err| backend(kind, err))?;
                        Ok(stream)
                    }) {
                        Ok(stream) => {
                            let _ = ready_tx.send(Ok(()));
                            stream
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    tracing::info!(device = %name, "microphone opened");
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(Duration::from_millis(200));
                    }
                    drop(stream);
                })
                .map_err(|err| backend(kind, err))?
        };
        ready_rx.recv().map_err(|err| backend(kind, err))??;
        Ok(Self {
            name,
            chunks,
            pending: VecDeque::new(),
            lost,
            stop,
            thread: Some(thread),
            position: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lost_error(&self, reason: String) -> SourceError {
        SourceError::DeviceLost {
            kind: DeviceKind::Microphone,
            name: self.name.clone(),
            reason,
        }
    }
}

fn build_input(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    chunks: SyncSender<Vec<i16>>,
    lost: Arc<Mutex<Option<String>>>,
) -> Result<cpal::Stream, SourceError> {
    match format {
        SampleFormat::I16 => input_stream::<i16>(device, config, chunks, lost),
        SampleFormat::F32 => input_stream::<f32>(device, config, chunks, lost),
        SampleFormat::I32 => input_stream::<i32>(device, config, chunks, lost),
        SampleFormat::U16 => input_stream::<u16>(device, config, chunks, lost),
        SampleFormat::U8 => input_stream::<u8>(device, config, chunks, lost),
        other => Err(SourceError::Unsupported {
            kind: DeviceKind::Microphone,
            name: device.name().unwrap_or_default(),
            reason: format!("sample format {other} is not supported"),
        }),
    }
}

fn input_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    chunks: SyncSender<Vec<i16>>,
    lost: Arc<Mutex<Option<String>>>,
) -> Result<cpal::Stream, SourceError>
where
    T: SizedSample,
    i16: FromSample<T>,
{
    let channels = config.channels as usize;
    let on_data = move |data: &[T], _: &cpal::InputCallbackInfo| {
        // Downmix to mono: calls send mono Opus.
        let mono = data
            .chunks_exact(channels)
            .map(|frame| {
                let sum: i32 = frame.iter().map(|s| i32::from(i16::from_sample(*s))).sum();
                (sum / channels as i32) as i16
            })
            .collect();
        // A full queue means the reader is stuck; dropping keeps the callback
        // real-time.
        let _ = chunks.try_send(mono);
    };
    let on_error = move |err: cpal::StreamError| {
        tracing::warn!(error = %err, "microphone stream failed");
        *lost.lock().expect("the lost flag's lock is never poisoned") = Some(err.to_string());
    };
    device
        .build_input_stream(config, on_data, on_error, None)
        .map_err(|err| backend(DeviceKind::Microphone, err))
}

impl AudioSource for CpalMicrophone {
    fn next_frame(&mut self) -> Result<AudioFrame, SourceError> {
        while self.pending.len() < SAMPLES_PER_FRAME {
            if let Some(reason) = self.lost.lock().expect("never poisoned").clone() {
                return Err(self.lost_error(reason));
            }
            match self.chunks.recv_timeout(CAPTURE_TIMEOUT) {
                Ok(chunk) => self.pending.extend(chunk),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(
                        self.lost_error(format!("no samples for {} s", CAPTURE_TIMEOUT.as_secs()))
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.lost_error("the capture stream closed".into()));
                }
            }
        }
        let samples: Vec<i16> = self.pending.drain(..SAMPLES_PER_FRAME).collect();
        let timestamp = Duration::from_secs_f64(self.position as f64 / f64::from(SAMPLE_RATE));
        self.position += SAMPLES_PER_FRAME as u64;
        Ok(AudioFrame {
            sample_rate: SAMPLE_RATE,
            channels: 1,
            samples,
            timestamp,
        })
    }

    fn format(&self) -> AudioFormat {
        AudioFormat {
            sample_rate: SAMPLE_RATE,
            channels: 1,
        }
    }
}

impl Drop for CpalMicrophone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// A speaker through cpal. [`AudioSink::play`] queues samples that the device's
/// callback drains; when the queue runs dry the callback plays silence.
pub struct CpalSpeaker {
    name: String,
    channels: u16,
    queue: Arc<Mutex<VecDeque<i16>>>,
    lost: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CpalSpeaker {
    /// Opens the speaker called `name`, or the default one. Returns
    /// [`SourceError::NoDevice`] when none exists.
    pub fn open(name: Option<&str>) -> Result<Self, SourceError> {
        let kind = DeviceKind::Speaker;
        let device = find_device(kind, name)?;
        let name = device.name().unwrap_or_else(|_| "unnamed".into());
        let (config, format) = pick_config(&device, kind, &name)?;
        let channels = config.channels;

        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let lost = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (queue, lost, stop) = (Arc::clone(&queue), Arc::clone(&lost), Arc::clone(&stop));
            let name = name.clone();
            std::thread::Builder::new()
                .name("speaker".into())
                .spawn(move || {
                    let stream = build_output(&device, &config, format, queue, lost);
                    let stream = match stream.and_then(|stream| {
                        stream.play().map_err(|err| backend(kind, err))?;
                        Ok(stream)
                    }) {
                        Ok(stream) => {
                            let _ = ready_tx.send(Ok(()));
                            stream
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    tracing::info!(device = %name, "speaker opened");
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(Duration::from_millis(200));
                    }
                    drop(stream);
                })
                .map_err(|err| backend(kind, err))?
        };
        ready_rx.recv().map_err(|err| backend(kind, err))??;
        Ok(Self {
            name,
            channels,
            queue,
            lost,
            stop,
            thread: Some(thread),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn build_output(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    queue: Arc<Mutex<VecDeque<i16>>>,
    lost: Arc<Mutex<Option<String>>>,
) -> Result<cpal::Stream, SourceError> {
    match format {
        SampleFormat::I16 => output_stream::<i16>(device, config, queue, lost),
        SampleFormat::F32 => output_stream::<f32>(device, config, queue, lost),
        SampleFormat::I32 => output_stream::<i32>(device, config, queue, lost),
        SampleFormat::U16 => output_stream::<u16>(device, config, queue, lost),
        SampleFormat::U8 => output_stream::<u8>(device, config, queue, lost),
        other => Err(SourceError::Unsupported {
            kind: DeviceKind::Speaker,
            name: device.name().unwrap_or_default(),
            reason: format!("sample format {other} is not supported"),
        }),
    }
}

fn output_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    queue: Arc<Mutex<VecDeque<i16>>>,
    lost: Arc<Mutex<Option<String>>>,
) -> Result<cpal::Stream, SourceError>
where
    T: SizedSample + FromSample<i16>,
{
    let on_data = move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
        let mut queue = queue
            .lock()
            .expect("the playback queue's lock is never poisoned");
        for slot in data.iter_mut() {
            *slot = T::from_sample(queue.pop_front().unwrap_or(0));
        }
    };
    let on_error = move |err: cpal::StreamError| {
        tracing::warn!(error = %err, "speaker stream failed");
        *lost.lock().expect("never poisoned") = Some(err.to_string());
    };
    device
        .build_output_stream(config, on_data, on_error, None)
        .map_err(|err| backend(DeviceKind::Speaker, err))
}

impl AudioSink for CpalSpeaker {
    fn play(&mut self, frame: &AudioFrame) -> Result<(), SinkError> {
        if let Some(reason) = self.lost.lock().expect("never poisoned").clone() {
            return Err(SinkError::Device(SourceError::DeviceLost {
                kind: DeviceKind::Speaker,
                name: self.name.clone(),
                reason,
            }));
        }
        let device_channels = self.channels as usize;
        let mut queue = self.queue.lock().expect("never poisoned");
        // Keep latency bounded: drop the oldest audio when the device lags.
        let limit = PLAYBACK_BUFFER_SAMPLES_PER_CHANNEL * device_channels;
        for frame_samples in frame.samples.chunks_exact(frame.channels.max(1) as usize) {
            let mono = frame_samples.iter().map(|&s| i32::from(s)).sum::<i32>()
                / frame_samples.len() as i32;
            for channel in 0..device_channels {
                let sample = frame_samples.get(channel).copied().unwrap_or(mono as i16);
                let sample = if frame_samples.len() == device_channels {
                    sample
                } else {
                    mono as i16
                };
                queue.push_back(sample);
            }
        }
        while queue.len() > limit {
            queue.pop_front();
        }
        Ok(())
    }
}

impl Drop for CpalSpeaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
