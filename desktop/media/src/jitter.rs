//! Jitter buffer for one remote audio stream: packets in, 20 ms playout slots out.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Depth limits of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Packets held before playout starts or restarts after running dry: 3 packets
    /// of 20 ms absorb 60 ms of jitter.
    pub target_depth: usize,
    /// Packets beyond this are dropped from the oldest end, which bounds latency
    /// (50 packets: 1 s).
    pub max_depth: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            target_depth: 3,
            max_depth: 50,
        }
    }
}

/// One RTP payload with the header fields the buffer orders by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferedPacket {
    pub sequence: u16,
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Result of [`JitterBuffer::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Buffered,
    /// A packet with this sequence number is already buffered.
    Duplicate,
    /// Its slot was already played or concealed, so it was dropped.
    Late,
}

/// Content of the next 20 ms playout slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The packet for this slot.
    Packet(BufferedPacket),
    /// The packet for this slot is missing but later ones arrived: conceal it. If
    /// the following packet is already here it is given too, because its Opus FEC
    /// data can rebuild the lost frame.
    Missing {
        sequence: u16,
        following: Option<BufferedPacket>,
    },
    /// Nothing is buffered: the sender is silent (DTX) or the network stalled.
    /// Play silence or comfort noise; the buffer refills to its target depth.
    Empty,
    /// Still filling up to the target depth before playout starts.
    Buffering,
}

/// Counters since the buffer was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    /// Slots whose packet never arrived in time.
    pub concealed: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Packets dropped because the buffer exceeded its maximum depth.
    pub overflowed: u64,
    /// Times the buffer ran dry during playout.
    pub underruns: u64,
}

/// Orders packets by RTP sequence number (with wrap-around), drops the ones
/// that come too late, and reports gaps for concealment.
#[derive(Debug)]
pub struct JitterBuffer {
    config: JitterConfig,
    /// Packets by extended (unwrapped) sequence number.
    packets: BTreeMap<u64, BufferedPacket>,
    /// Extended sequence number of the next slot to play, once playout started.
    next: Option<u64>,
    /// Highest extended sequence number seen, the reference for unwrapping.
    highest: Option<u64>,
    playing: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> Self {
        Self {
            config: JitterConfig {
                target_depth: config.target_depth.max(1),
                max_depth: config.max_depth.max(config.target_depth.max(1)),
            },
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            playing: false,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Returns the number of packets waiting.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Adds a received packet.
    pub fn push(&mut self, sequence: u16, timestamp: u32, payload: Bytes) -> PushOutcome {
        let extended = self.extend(sequence);
        if self.next.is_some_and(|next| extended < next) {
            self.stats.late += 1;
            return PushOutcome::Late;
        }
        if self.packets.contains_key(&extended) {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.stats.received += 1;
        self.highest = Some(
            self.highest
                .map_or(extended, |highest| highest.max(extended)),
        );
        let packet = BufferedPacket {
            sequence,
            timestamp,
            payload,
        };
        self.packets.insert(extended, packet);

        while self.packets.len() > self.config.max_depth {
            let (oldest, _) = self.packets.pop_first().expect("the buffer is not empty");
            self.stats.overflowed += 1;
            if self.next.is_some_and(|next| next <= oldest) {
                self.next = Some(oldest + 1);
            }
        }
        PushOutcome::Buffered
    }

    /// Takes what to play in the next 20 ms slot. Call it once per slot.
    pub fn pop(&mut self) -> Playout {
        if !self.playing {
            if self.packets.len() < self.config.target_depth {
                return Playout::Buffering;
            }
            self.playing = true;
            let first = *self.packets.keys().next().expect("the buffer is not empty");
            // Late packets are rejected, so `first` is at or after the slot that
            // ran dry; slots skipped here were already played as silence.
            self.next = Some(first);
        }

        let Some(next) = self.next else {
            return Playout::Buffering;
        };
        if self.packets.is_empty() {
            self.playing = false;
            self.stats.underruns += 1;
            return Playout::Empty;
        }

        self.next = Some(next + 1);
        if let Some(packet) = self.packets.remove(&next) {
            self.stats.played += 1;
            return Playout::Packet(packet);
        }
        self.stats.concealed += 1;
        Playout::Missing {
            sequence: next as u16,
            following: self.packets.get(&(next + 1)).cloned(),
        }
    }

    /// Maps a 16-bit sequence number to the extended one nearest the highest seen.
    fn extend(&self, sequence: u16) -> u64 {
        // Start high enough that early packets before a wrap stay positive.
        let Some(highest) = self.highest else {
            return (1 << 16) + u64::from(sequence);
        };
        let delta = sequence.wrapping_sub(highest as u16) as i16;
        highest.wrapping_add_signed(i64::from(delta))
    }
}
