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

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
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

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::{AttributedPacket, RTPHeaderExtension};
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
}
