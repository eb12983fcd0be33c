//! What Janus reports back about the video this participant sends: keyframe
//! requests (PLI and FIR) and reception reports, which set the encoder's bitrate.
//!
//! The interceptor chain of `webrtc` 0.21 ends the inbound RTCP path before the
//! application unless an interceptor marks a packet for delivery. [`FeedbackMarker`]
//! marks the feedback the sender acts on; [`watch_feedback`] reads it from the
//! video track, requests keyframes from the encoder, and runs the loss-based half of
//! Google Congestion Control (the crate's [`LossController`]) on the loss that Janus
//! reports, capped by Janus's REMB.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, LossController, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::media::SendSwitches;

/// The lowest video bitrate the loss controller goes down to, in kbit/s: enough
/// for a recognisable 320x240 picture.
pub const MIN_VIDEO_KBPS: u32 = 60;

/// Marks the inbound RTCP that the sender acts on, so that it reaches the track:
/// keyframe requests, reception reports and REMB. Everything else stops at the end
/// of the chain, as before.
#[derive(Default)]
pub struct FeedbackMarker {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

fn is_sender_feedback(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>()
        || any.is::<FullIntraRequest>()
        || any.is::<ReceiverReport>()
        || any.is::<ReceiverEstimatedMaximumBitrate>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackMarker {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut message: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &message.message.packet
            && packets
                .iter()
                .any(|packet| is_sender_feedback(packet.as_ref()))
        {
            message.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for FeedbackMarker {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// What the feedback on the sent video did, for statistics.
#[derive(Debug, Default)]
pub struct SentVideo {
    keyframe_requests: AtomicU64,
    reports: AtomicU64,
    /// The last reported loss, in 1/256 (RTCP's `fraction_lost`).
    fraction_lost: AtomicU32,
    target_kbps: AtomicU32,
    lowest_kbps: AtomicU32,
    remb_kbps: AtomicU32,
}

/// A snapshot of [`SentVideo`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SentStats {
    /// PLI and FIR packets that asked this participant for a keyframe.
    pub keyframe_requests: u64,
    /// Reception reports from Janus about the video.
    pub loss_reports: u64,
    /// The loss of the last report, in per cent.
    pub loss_percent: f64,
    /// The video bitrate the encoder is set to, and the lowest it was set to, in
    /// kbit/s; `None` before the first report.
    pub video_kbps: Option<u32>,
    pub lowest_video_kbps: Option<u32>,
    /// The last REMB from Janus, in kbit/s.
    pub remb_kbps: Option<u32>,
    /// The RIDs of the simulcast layers that the video bitrate carries, highest
    /// first: "h", "m" and "l" at full bitrate, fewer as it falls.
    #[serde(default)]
    pub video_layers: Vec<String>,
}

impl SentVideo {
    pub fn snapshot(&self) -> SentStats {
        let nonzero = |value: u32| (value > 0).then_some(value);
        SentStats {
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
            loss_reports: self.reports.load(Ordering::Relaxed),
            loss_percent: f64::from(self.fraction_lost.load(Ordering::Relaxed)) * 100.0 / 256.0,
            video_kbps: nonzero(self.target_kbps.load(Ordering::Relaxed)),
            lowest_video_kbps: nonzero(self.lowest_kbps.load(Ordering::Relaxed)),
            remb_kbps: nonzero(self.remb_kbps.load(Ordering::Relaxed)),
            video_layers: Vec::new(),
        }
    }
}

/// The loss-based bitrate of the sent video: the crate's GCC loss controller,
/// started at the encoder's bitrate and capped by REMB.
#[derive(Debug)]
pub struct VideoBitrate {
    loss: LossController,
    max_kbps: u32,
    remb_kbps: Option<u32>,
}

impl VideoBitrate {
    /// Starts at `max_kbps`, the bitrate the encoder was opened with.
    pub fn new(max_kbps: u32) -> Self {
        let max = f64::from(max_kbps.max(MIN_VIDEO_KBPS)) * 1000.0;
        VideoBitrate {
            loss: LossController::new(max, f64::from(MIN_VIDEO_KBPS) * 1000.0, max),
            max_kbps,
            remb_kbps: None,
        }
    }

    /// Folds in one reception report's `fraction_lost` (in 1/256) and returns the
    /// new target in kbit/s.
    pub fn on_report(&mut self, now: Instant, fraction_lost: u8) -> u32 {
        self.loss.update(now, usize::from(fraction_lost), 256);
        self.target_kbps()
    }

    /// Caps the target at Janus's estimate of what it can take.
    pub fn on_remb(&mut self, bits_per_second: f32) -> u32 {
        self.remb_kbps = Some((bits_per_second / 1000.0) as u32);
        self.target_kbps()
    }

    pub fn target_kbps(&self) -> u32 {
        let loss_kbps = (self.loss.target() / 1000.0) as u32;
        let capped = self.remb_kbps.map_or(loss_kbps, |remb| loss_kbps.min(remb));
        capped.clamp(MIN_VIDEO_KBPS.min(self.max_kbps), self.max_kbps)
    }
}

/// Reads the feedback on `track`, the published video with the SSRCs `ssrcs`,
/// until `stop`: keyframe requests go to the encoder through `switches`, and so does
/// the bitrate that the reported loss allows.
pub async fn watch_feedback(
    track: Arc<dyn TrackLocal>,
    ssrcs: Vec<u32>,
    switches: Arc<SendSwitches>,
    sent: Arc<SentVideo>,
    stop: CancellationToken,
) {
    let mut bitrate: Option<VideoBitrate> = None;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = track.poll() => event,
        };
        let packets = match event {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => packets,
            Some(_) => continue,
            // Not bound yet, or unbound for good; a bound track never returns `None`
            // while its connection lives, so this waits instead of spinning.
            None => {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(std::time::Duration::from_millis(200)) => continue,
                }
            }
        };
        let max_kbps = switches.video_max_kbps();
        let bitrate = match &mut bitrate {
            Some(bitrate) if bitrate.max_kbps == max_kbps => bitrate,
            // A new encoder (another camera) starts a new controller at its bitrate.
            _ => bitrate.insert(VideoBitrate::new(max_kbps)),
        };
        let mut target = None;
        for packet in &packets {
            let any = packet.as_any();
            if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                if ssrcs.contains(&pli.media_ssrc) {
                    sent.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    switches.request_keyframe();
                }
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                if fir.fir.iter().any(|entry| ssrcs.contains(&entry.ssrc)) {
                    sent.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                    switches.request_keyframe();
                }
            } else if let Some(report) = any.downcast_ref::<ReceiverReport>() {
                // With several layers, the worst one speaks for the path.
                let worst = report
                    .reports
                    .iter()
                    .filter(|block| ssrcs.contains(&block.ssrc))
                    .map(|block| block.fraction_lost)
                    .max();
                if let Some(fraction_lost) = worst {
                    sent.reports.fetch_add(1, Ordering::Relaxed);
                    sent.fraction_lost
                        .store(u32::from(fraction_lost), Ordering::Relaxed);
                    target = Some(bitrate.on_report(Instant::now(), fraction_lost));
                }
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>()
                && remb.ssrcs.iter().any(|ssrc| ssrcs.contains(ssrc))
            {
                sent.remb_kbps
                    .store((remb.bitrate / 1000.0) as u32, Ordering::Relaxed);
                target = Some(bitrate.on_remb(remb.bitrate));
            }
        }
        if let Some(kbps) = target {
            switches.set_video_kbps(kbps);
            sent.target_kbps.store(kbps, Ordering::Relaxed);
            let lowest = sent.lowest_kbps.load(Ordering::Relaxed);
            if lowest == 0 || kbps < lowest {
                sent.lowest_kbps.store(kbps, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// RTCP's `fraction_lost` for a share of packets.
    fn fraction(share: f64) -> u8 {
        (share * 256.0) as u8
    }

    #[test]
    fn loss_lowers_then_restores_bitrate() {
        let mut bitrate = VideoBitrate::new(300);
        let mut now = Instant::now();
        for _ in 0..10 {
            now += Duration::from_secs(1);
            bitrate.on_report(now, fraction(0.25));
        }
        let lowered = bitrate.target_kbps();
        assert!(lowered < 150, "25 % loss left {lowered} kbit/s");
        assert!(lowered >= MIN_VIDEO_KBPS);
        for _ in 0..60 {
            now += Duration::from_secs(1);
            bitrate.on_report(now, 0);
        }
        assert_eq!(bitrate.target_kbps(), 300);
    }

    #[test]
    fn moderate_loss_holds_the_bitrate() {
        let mut bitrate = VideoBitrate::new(300);
        let mut now = Instant::now();
        for _ in 0..10 {
            now += Duration::from_secs(1);
            bitrate.on_report(now, fraction(0.05));
        }
        assert_eq!(bitrate.target_kbps(), 300);
    }

    #[test]
    fn remb_caps_the_bitrate() {
        let mut bitrate = VideoBitrate::new(300);
        assert_eq!(bitrate.on_remb(128_000.0), 128);
        assert_eq!(bitrate.on_report(Instant::now(), 0), 128);
        assert_eq!(bitrate.on_remb(2_000_000.0), 300);
    }
}
