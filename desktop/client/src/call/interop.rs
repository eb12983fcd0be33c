//! Interceptors that adapt what the `webrtc` crate 0.21 sends to what Janus 1.1.2
//! needs.
//!
//! [`RtxExtensions`] lets Janus recognise the publisher's retransmissions. The SDP
//! of rid-based simulcast lists no SSRCs, so Janus learns an RTX stream's SSRC
//! only from the `mid` and repaired RTP stream id header extensions of its
//! packets (RFC 8852). The crate's NACK responder builds its RTX packets without
//! any header extension, and Janus dropped every one as an unknown SSRC.
//! Resending without RTX, on the media stream, would work too, but Janus counts a
//! packet resent that way as received when its RTP timestamp is within 120 ms of
//! the newest one. Its reception reports would then hide most of the loss from
//! the loss controller of `call::feedback`.
//!
//! [`DlsrShortener`] lets Janus resend to the subscriber. Janus 1.1.2
//! (`src/ice.c`) keeps the packets it sends a subscriber for retransmission only
//! once its retransmission queue has a length. It sets that length (the
//! round-trip time plus 100 ms, from 200 to 1000 ms) only when the round-trip time
//! it computes from the subscriber's receiver reports changes. That time is in
//! whole milliseconds and starts at 0, so on the same host or a LAN, where the
//! round trip takes less than a millisecond, it never changes. Janus then keeps
//! no packets, and every NACK of the subscriber goes unanswered. The shortener
//! reports the DLSR 1 ms short, so that Janus computes at least 1 ms.
//!
//! NOTE: even so, Janus keeps nothing before the first receiver report that
//! refers to one of its sender reports, which each side sends once a second. Gaps
//! in the first second or two of a subscription stay open.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::sansio::Protocol;
use rtc::sdp::extmap::{SDES_MID_URI, SDES_REPAIR_RTP_STREAM_ID_URI, SDES_RTP_STREAM_ID_URI};
use rtc::shared::error::Error;

/// Changes the packets that an [`OutgoingRewriter`] passes towards the wire, and
/// follows the local streams it is bound to.
pub trait RewriteOutgoing: Send + Sync + 'static {
    /// Changes one outgoing packet in place.
    fn rewrite(&mut self, packet: &mut Packet);

    /// Records a local stream that the connection starts sending.
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}

    /// Forgets a local stream that the connection stopped sending.
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
}

/// An interceptor that passes every packet on in both directions, the outgoing
/// ones after its [`RewriteOutgoing`] changed them.
pub struct OutgoingRewriter<R> {
    rewrite: R,
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl<R: RewriteOutgoing> OutgoingRewriter<R> {
    pub fn new(rewrite: R) -> Self {
        OutgoingRewriter {
            rewrite,
            read_queue: VecDeque::new(),
            write_queue: VecDeque::new(),
        }
    }
}

impl<R: RewriteOutgoing> Protocol<TaggedPacket, TaggedPacket, ()> for OutgoingRewriter<R> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, message: TaggedPacket) -> Result<(), Self::Error> {
        self.read_queue.push_back(message);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, mut message: TaggedPacket) -> Result<(), Self::Error> {
        self.rewrite.rewrite(&mut message.message.packet);
        self.write_queue.push_back(message);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl<R: RewriteOutgoing> Interceptor for OutgoingRewriter<R> {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.rewrite.bind_local_stream(info);
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.rewrite.unbind_local_stream(info);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// The header extension ids that one simulcast layer's packets carry, and the
/// values of its last packet.
#[derive(Debug, Default)]
struct LayerIds {
    mid_id: u8,
    rid_id: u8,
    repaired_rid_id: u8,
    mid: Option<Bytes>,
    rid: Option<Bytes>,
}

/// Adds the `mid` and repaired RTP stream id header extensions to the RTX packets
/// of each bound local stream, copied from the `mid` and RTP stream id of the
/// stream's own packets. Its [`OutgoingRewriter`] must sit between the NACK
/// responder (4_000) and the wire, so that the retransmissions the responder
/// writes pass through it.
#[derive(Debug, Default)]
pub struct RtxExtensions {
    /// The layer of each media SSRC.
    layers: HashMap<u32, LayerIds>,
    /// The media SSRC of each RTX SSRC.
    repaired: HashMap<u32, u32>,
}

/// Returns the id that `info` negotiated for the header extension `uri`, as the
/// `u8` that RTP packet headers use.
fn extension_id(info: &StreamInfo, uri: &str) -> Option<u8> {
    info.rtp_header_extensions
        .iter()
        .find(|extension| extension.uri == uri)
        .and_then(|extension| u8::try_from(extension.id).ok())
}

impl RewriteOutgoing for RtxExtensions {
    /// Records the `mid` and RTP stream id of a media packet, or adds them to an
    /// RTX packet.
    fn rewrite(&mut self, packet: &mut Packet) {
        let Packet::Rtp(packet) = packet else {
            return;
        };
        let ssrc = packet.header.ssrc;
        if let Some(layer) = self.layers.get_mut(&ssrc) {
            if let Some(mid) = packet.header.get_extension(layer.mid_id) {
                layer.mid = Some(mid);
            }
            if let Some(rid) = packet.header.get_extension(layer.rid_id) {
                layer.rid = Some(rid);
            }
            return;
        }
        let Some(layer) = self
            .repaired
            .get(&ssrc)
            .and_then(|media_ssrc| self.layers.get(media_ssrc))
        else {
            return;
        };
        let (Some(mid), Some(rid)) = (&layer.mid, &layer.rid) else {
            return;
        };
        let tagged = packet
            .header
            .set_extension(layer.mid_id, mid.clone())
            .and_then(|()| {
                packet
                    .header
                    .set_extension(layer.repaired_rid_id, rid.clone())
            });
        if let Err(error) = tagged {
            tracing::debug!(%error, ssrc, "failed to tag an RTX packet with its layer");
        }
    }

    /// Records a stream's RTX SSRC and extension ids. A stream without RTX, or
    /// whose SDP answer left out one of the three extensions, is left alone.
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        let Some(rtx_ssrc) = info.ssrc_rtx else {
            return;
        };
        let ids = (
            extension_id(info, SDES_MID_URI),
            extension_id(info, SDES_RTP_STREAM_ID_URI),
            extension_id(info, SDES_REPAIR_RTP_STREAM_ID_URI),
        );
        let (Some(mid_id), Some(rid_id), Some(repaired_rid_id)) = ids else {
            return;
        };
        self.layers.insert(
            info.ssrc,
            LayerIds {
                mid_id,
                rid_id,
                repaired_rid_id,
                ..LayerIds::default()
            },
        );
        self.repaired.insert(rtx_ssrc, info.ssrc);
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.layers.remove(&info.ssrc);
        if let Some(rtx_ssrc) = info.ssrc_rtx {
            self.repaired.remove(&rtx_ssrc);
        }
    }
}

/// One millisecond in the units of the DLSR field (1/65536 s), rounded up.
pub const DLSR_SHORTENING: u32 = 66;

/// Shortens the delay since the last sender report (DLSR) of each outgoing
/// reception report that refers to a sender report (a nonzero LSR) by
/// [`DLSR_SHORTENING`], so that Janus's round-trip time is 1 ms longer than the
/// real one. Janus uses that time only to size its retransmission queue and in its
/// statistics. Blocks without an LSR stay as they are, because Janus computes no
/// round-trip time from them.
#[derive(Debug, Default)]
pub struct DlsrShortener;

/// Returns `report` with the DLSR of its blocks with an LSR shortened, or `None`
/// when no block has one.
fn shorten_dlsr(report: &ReceiverReport) -> Option<ReceiverReport> {
    if report
        .reports
        .iter()
        .all(|block| block.last_sender_report == 0)
    {
        return None;
    }
    let mut shortened = report.clone();
    for block in &mut shortened.reports {
        if block.last_sender_report != 0 {
            block.delay = block.delay.saturating_sub(DLSR_SHORTENING);
        }
    }
    Some(shortened)
}

impl RewriteOutgoing for DlsrShortener {
    fn rewrite(&mut self, packet: &mut Packet) {
        let Packet::Rtcp(packets) = packet else {
            return;
        };
        for packet in packets.iter_mut() {
            let shortened = packet
                .as_any()
                .downcast_ref::<ReceiverReport>()
                .and_then(shorten_dlsr);
            if let Some(shortened) = shortened {
                *packet = Box::new(shortened);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, RTPHeaderExtension};
    use rtc::rtcp::reception_report::ReceptionReport;
    use rtc::shared::TransportContext;

    const MEDIA_SSRC: u32 = 1111;
    const RTX_SSRC: u32 = 2222;
    const MID_ID: u8 = 1;
    const RID_ID: u8 = 2;
    const REPAIRED_RID_ID: u8 = 3;

    fn stream_info() -> StreamInfo {
        let extension = |uri: &str, id: u8| RTPHeaderExtension {
            uri: uri.into(),
            id: id.into(),
        };
        StreamInfo {
            ssrc: MEDIA_SSRC,
            ssrc_rtx: Some(RTX_SSRC),
            rtp_header_extensions: vec![
                extension(SDES_MID_URI, MID_ID),
                extension(SDES_RTP_STREAM_ID_URI, RID_ID),
                extension(SDES_REPAIR_RTP_STREAM_ID_URI, REPAIRED_RID_ID),
            ],
            ..StreamInfo::default()
        }
    }

    fn packet(ssrc: u32, extensions: &[(u8, &'static str)]) -> rtc::rtp::Packet {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.version = 2;
        packet.header.ssrc = ssrc;
        for (id, value) in extensions {
            packet
                .header
                .set_extension(*id, Bytes::from_static(value.as_bytes()))
                .unwrap();
        }
        packet
    }

    /// Writes `packet` through `interceptor` and returns it as it leaves.
    fn written(
        interceptor: &mut OutgoingRewriter<RtxExtensions>,
        packet: rtc::rtp::Packet,
    ) -> rtc::rtp::Packet {
        interceptor
            .handle_write(TaggedPacket {
                now: Instant::now(),
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)),
            })
            .unwrap();
        let message = interceptor.poll_write().expect("the packet was kept");
        let Packet::Rtp(packet) = message.message.packet else {
            panic!("the packet left as something else than RTP");
        };
        packet
    }

    #[test]
    fn rtx_packet_gets_its_layer() {
        let mut interceptor = OutgoingRewriter::new(RtxExtensions::default());
        interceptor.bind_local_stream(&stream_info());
        written(
            &mut interceptor,
            packet(MEDIA_SSRC, &[(MID_ID, "1"), (RID_ID, "h")]),
        );

        let rtx = written(&mut interceptor, packet(RTX_SSRC, &[]));
        assert_eq!(rtx.header.get_extension(MID_ID).as_deref(), Some(&b"1"[..]));
        assert_eq!(
            rtx.header.get_extension(REPAIRED_RID_ID).as_deref(),
            Some(&b"h"[..])
        );
        assert_eq!(rtx.header.get_extension(RID_ID), None);
    }

    #[test]
    fn media_packet_is_unchanged() {
        let mut interceptor = OutgoingRewriter::new(RtxExtensions::default());
        interceptor.bind_local_stream(&stream_info());
        let media = written(
            &mut interceptor,
            packet(MEDIA_SSRC, &[(MID_ID, "1"), (RID_ID, "h")]),
        );
        assert_eq!(media.header.get_extension_ids(), vec![MID_ID, RID_ID]);
    }

    #[test]
    fn rtx_before_any_media_stays_bare() {
        let mut interceptor = OutgoingRewriter::new(RtxExtensions::default());
        interceptor.bind_local_stream(&stream_info());
        let rtx = written(&mut interceptor, packet(RTX_SSRC, &[]));
        assert!(!rtx.header.extension, "{:?}", rtx.header);
    }

    #[test]
    fn stream_without_repaired_id_is_left_alone() {
        let mut interceptor = OutgoingRewriter::new(RtxExtensions::default());
        let mut info = stream_info();
        info.rtp_header_extensions
            .retain(|extension| extension.uri != SDES_REPAIR_RTP_STREAM_ID_URI);
        interceptor.bind_local_stream(&info);
        written(
            &mut interceptor,
            packet(MEDIA_SSRC, &[(MID_ID, "1"), (RID_ID, "h")]),
        );
        let rtx = written(&mut interceptor, packet(RTX_SSRC, &[]));
        assert!(!rtx.header.extension, "{:?}", rtx.header);
    }

    fn block(ssrc: u32, last_sender_report: u32, delay: u32) -> ReceptionReport {
        ReceptionReport {
            ssrc,
            last_sender_report,
            delay,
            ..ReceptionReport::default()
        }
    }

    /// Writes one receiver report through a [`DlsrShortener`] and returns the
    /// SSRC and DLSR of its blocks as they leave it.
    fn report_delays(blocks: Vec<ReceptionReport>) -> Vec<(u32, u32)> {
        let report = ReceiverReport {
            ssrc: 1,
            reports: blocks,
            profile_extensions: Default::default(),
        };
        let mut shortener = OutgoingRewriter::new(DlsrShortener);
        shortener
            .handle_write(TaggedPacket {
                now: Instant::now(),
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(report)])),
            })
            .unwrap();
        let message = shortener.poll_write().expect("the report was kept");
        let Packet::Rtcp(packets) = message.message.packet else {
            panic!("the report left as RTP");
        };
        let report = packets[0]
            .as_any()
            .downcast_ref::<ReceiverReport>()
            .expect("the report changed its type");
        report
            .reports
            .iter()
            .map(|block| (block.ssrc, block.delay))
            .collect()
    }

    #[test]
    fn block_with_lsr_loses_a_millisecond() {
        let delays = report_delays(vec![block(7, 0x1234_5678, 5_000)]);
        assert_eq!(delays, vec![(7, 5_000 - DLSR_SHORTENING)]);
    }

    #[test]
    fn block_without_sender_report_is_kept() {
        let delays = report_delays(vec![block(7, 0, 0), block(8, 0x1234_5678, 40)]);
        assert_eq!(delays, vec![(7, 0), (8, 0)]);
    }

    #[test]
    fn shortening_adds_a_millisecond_to_janus_round_trip() {
        // Janus computes the round trip in 1/65536 s as arrival - LSR - DLSR and
        // truncates it to milliseconds.
        let real_round_trip = 10;
        let dlsr = 5_000;
        let reported = report_delays(vec![block(7, 1, dlsr)])[0].1;
        let computed = real_round_trip + dlsr - reported;
        assert!(
            computed * 1000 / 65_536 >= 1,
            "Janus would compute {computed}/65536 s"
        );
    }
}
