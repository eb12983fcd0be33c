//! The jitter buffer orders packets, drops late ones and reports gaps.

use bytes::Bytes;
use roomler_media::{JitterBuffer, JitterConfig, Playout, PushOutcome};

fn payload(sequence: u16) -> Bytes {
    Bytes::from(sequence.to_be_bytes().to_vec())
}

fn buffer(target_depth: usize) -> JitterBuffer {
    JitterBuffer::new(JitterConfig {
        target_depth,
        max_depth: 50,
    })
}

fn push(buffer: &mut JitterBuffer, sequence: u16) -> PushOutcome {
    buffer.push(sequence, u32::from(sequence) * 960, payload(sequence))
}

fn played_sequence(playout: Playout) -> Option<u16> {
    match playout {
        Playout::Packet(packet) => Some(packet.sequence),
        _ => None,
    }
}

#[test]
fn reorders_packets() {
    let mut jitter = buffer(3);
    for sequence in [12, 10, 11] {
        assert_eq!(push(&mut jitter, sequence), PushOutcome::Buffered);
    }
    let played: Vec<Option<u16>> = (0..3).map(|_| played_sequence(jitter.pop())).collect();
    assert_eq!(played, [Some(10), Some(11), Some(12)]);
}

#[test]
fn waits_for_target_depth() {
    let mut jitter = buffer(3);
    push(&mut jitter, 1);
    push(&mut jitter, 2);
    assert_eq!(jitter.pop(), Playout::Buffering);
    push(&mut jitter, 3);
    assert_eq!(played_sequence(jitter.pop()), Some(1));
}

#[test]
fn drops_late_packets() {
    let mut jitter = buffer(2);
    push(&mut jitter, 100);
    push(&mut jitter, 102);
    assert_eq!(played_sequence(jitter.pop()), Some(100));
    assert!(matches!(
        jitter.pop(),
        Playout::Missing { sequence: 101, .. }
    ));
    // 101 arrives after its slot was concealed.
    assert_eq!(push(&mut jitter, 101), PushOutcome::Late);
    assert_eq!(push(&mut jitter, 99), PushOutcome::Late);
    assert_eq!(played_sequence(jitter.pop()), Some(102));
    assert_eq!(jitter.stats().late, 2);
}

#[test]
fn reports_gaps_with_following_packet() {
    let mut jitter = buffer(3);
    for sequence in [1, 2, 4, 5] {
        push(&mut jitter, sequence);
    }
    assert_eq!(played_sequence(jitter.pop()), Some(1));
    assert_eq!(played_sequence(jitter.pop()), Some(2));
    match jitter.pop() {
        Playout::Missing {
            sequence,
            following,
        } => {
            assert_eq!(sequence, 3);
            let following = following.expect("packet 4 is given for FEC");
            assert_eq!(following.sequence, 4);
            assert_eq!(following.payload, payload(4));
        }
        other => panic!("expected a gap at 3, got {other:?}"),
    }
    assert_eq!(played_sequence(jitter.pop()), Some(4));
    assert_eq!(played_sequence(jitter.pop()), Some(5));
    let stats = jitter.stats();
    assert_eq!(stats.concealed, 1);
    assert_eq!(stats.played, 4);
}

#[test]
fn handles_sequence_wrap() {
    let mut jitter = buffer(4);
    for sequence in [65_535, 0, 65_534, 1] {
        assert_eq!(push(&mut jitter, sequence), PushOutcome::Buffered);
    }
    let played: Vec<Option<u16>> = (0..4).map(|_| played_sequence(jitter.pop())).collect();
    assert_eq!(played, [Some(65_534), Some(65_535), Some(0), Some(1)]);
}

#[test]
fn rejects_duplicates() {
    let mut jitter = buffer(2);
    assert_eq!(push(&mut jitter, 7), PushOutcome::Buffered);
    assert_eq!(push(&mut jitter, 7), PushOutcome::Duplicate);
    assert_eq!(jitter.len(), 1);
    assert_eq!(jitter.stats().duplicates, 1);
}

#[test]
fn underrun_then_refill() {
    let mut jitter = buffer(2);
    push(&mut jitter, 1);
    push(&mut jitter, 2);
    assert_eq!(played_sequence(jitter.pop()), Some(1));
    assert_eq!(played_sequence(jitter.pop()), Some(2));
    assert_eq!(jitter.pop(), Playout::Empty);
    assert_eq!(jitter.stats().underruns, 1);
    // DTX: the sender resumes with the next sequence number.
    push(&mut jitter, 3);
    assert_eq!(jitter.pop(), Playout::Buffering);
    push(&mut jitter, 4);
    assert_eq!(played_sequence(jitter.pop()), Some(3));
}

#[test]
fn overflow_drops_oldest() {
    let mut jitter = JitterBuffer::new(JitterConfig {
        target_depth: 2,
        max_depth: 4,
    });
    for sequence in 10..16 {
        push(&mut jitter, sequence);
    }
    assert_eq!(jitter.len(), 4);
    assert_eq!(jitter.stats().overflowed, 2);
    assert_eq!(played_sequence(jitter.pop()), Some(12));
}
