//! The simulcast layer that each remote feed is received in, chosen from the size
//! of its tile.
//!
//! Every participant sends its video in three simulcast layers, and Janus forwards
//! one of them to each subscriber: substream 0 is the lowest, 2 the full size. A
//! large tile receives the full size, a medium one the half size, and a small one
//! the lowest layer. A hidden tile is not decoded and receives the lowest layer
//! too, so that it costs little bandwidth and shows again within a keyframe
//! interval.

use std::collections::{HashMap, HashSet};

use roomler_shared::call::{MediaKind, SubscribedStream, SubstreamChoice};

/// The substream that Janus sends a new subscription: the highest of three.
pub const TOP_SUBSTREAM: u8 = 2;
/// The half-size substream.
pub const MEDIUM_SUBSTREAM: u8 = 1;
/// The lowest substream.
pub const LOW_SUBSTREAM: u8 = 0;
/// Grid pages of at most this many tiles, the self view included, show them
/// large, and pages of at most [`GRID_MEDIUM_TILES`] medium. The desktop call view
/// uses the same numbers (`ui/src/lib/call.ts`).
pub const GRID_LARGE_TILES: usize = 4;
pub const GRID_MEDIUM_TILES: usize = 9;

/// The size of a remote feed's tile on screen, ordered from hidden to large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileSize {
    /// Not on screen: not decoded.
    Hidden,
    /// A tile among many, e.g. on a grid page of ten or more tiles.
    Small,
    /// A tile among a few, e.g. on a grid page of five to nine tiles.
    Medium,
    /// A tile that fills much of the view, e.g. the speaker view's main tile.
    Large,
}

impl TileSize {
    /// Returns the size of each tile on a grid page of `tiles` tiles, the self
    /// view included: the grid shares the view's width among them.
    pub fn in_grid(tiles: usize) -> TileSize {
        if tiles <= GRID_LARGE_TILES {
            TileSize::Large
        } else if tiles <= GRID_MEDIUM_TILES {
            TileSize::Medium
        } else {
            TileSize::Small
        }
    }

    /// Returns the substream that a tile of this size receives.
    pub fn substream(self) -> u8 {
        match self {
            TileSize::Large => TOP_SUBSTREAM,
            TileSize::Medium => MEDIUM_SUBSTREAM,
            TileSize::Small | TileSize::Hidden => LOW_SUBSTREAM,
        }
    }
}

/// The tile size of every remote feed: the listed feeds have their own, and every
/// other feed, including one that joins later, has `others`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileLayout {
    sizes: HashMap<u64, TileSize>,
    others: TileSize,
}

impl Default for TileLayout {
    /// Shows every feed large, as a headless client that decodes everything does.
    fn default() -> Self {
        TileLayout::new(HashMap::new(), TileSize::Large)
    }
}

impl TileLayout {
    pub fn new(sizes: HashMap<u64, TileSize>, others: TileSize) -> Self {
        TileLayout { sizes, others }
    }

    /// Shows each listed feed at its size and hides every other feed. A feed listed
    /// twice is shown at the larger size.
    pub fn shown(tiles: impl IntoIterator<Item = (u64, TileSize)>) -> Self {
        let mut sizes: HashMap<u64, TileSize> = HashMap::new();
        for (feed_id, size) in tiles {
            let shown = sizes.entry(feed_id).or_insert(size);
            *shown = (*shown).max(size);
        }
        TileLayout::new(sizes, TileSize::Hidden)
    }

    /// Shows these feeds large and hides the others, or shows every feed large with
    /// `None`: the meaning of [`CallSession::set_visible`](super::CallSession::set_visible).
    pub fn visible(feeds: Option<HashSet<u64>>) -> Self {
        match feeds {
            None => TileLayout::default(),
            Some(feeds) => {
                TileLayout::shown(feeds.into_iter().map(|feed_id| (feed_id, TileSize::Large)))
            }
        }
    }

    pub fn size(&self, feed_id: u64) -> TileSize {
        self.sizes.get(&feed_id).copied().unwrap_or(self.others)
    }

    /// Returns the size of every feed that is not listed.
    pub fn others(&self) -> TileSize {
        self.others
    }

    /// Returns whether the video of `feed_id` is decoded.
    pub fn shows(&self, feed_id: u64) -> bool {
        self.size(feed_id) != TileSize::Hidden
    }
}

/// The substream last requested for each subscribed video stream, by subscriber
/// `mid`, with the feed that the `mid` carried then.
#[derive(Debug, Default)]
pub struct SubstreamRequests {
    requested: HashMap<String, (u64, u8)>,
}

impl SubstreamRequests {
    /// Returns the substream requests that bring the video `streams` to the layers
    /// that `layout` needs. A stream never requested, or whose `mid` now carries
    /// another feed, is taken to be at [`TOP_SUBSTREAM`], Janus's default.
    pub fn changes(
        &self,
        layout: &TileLayout,
        streams: &[SubscribedStream],
    ) -> Vec<SubstreamChoice> {
        let mut changes: Vec<SubstreamChoice> = streams
            .iter()
            .filter(|stream| stream.kind == MediaKind::Video)
            .filter_map(|stream| {
                let needed = layout.size(stream.feed_id).substream();
                let current = match self.requested.get(&stream.mid) {
                    Some((feed_id, substream)) if *feed_id == stream.feed_id => *substream,
                    _ => TOP_SUBSTREAM,
                };
                (needed != current).then(|| SubstreamChoice {
                    mid: stream.mid.clone(),
                    substream: needed,
                })
            })
            .collect();
        changes.sort_by(|left, right| left.mid.cmp(&right.mid));
        changes
    }

    /// Records requests that Janus accepted.
    pub fn record(&mut self, streams: &[SubscribedStream], accepted: &[SubstreamChoice]) {
        for choice in accepted {
            if let Some(stream) = streams.iter().find(|stream| stream.mid == choice.mid) {
                self.requested
                    .insert(choice.mid.clone(), (stream.feed_id, choice.substream));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(mid: &str, feed_id: u64, kind: MediaKind) -> SubscribedStream {
        SubscribedStream {
            mid: mid.into(),
            feed_id,
            feed_mid: "1".into(),
            kind,
            user_id: None,
        }
    }

    fn choice(mid: &str, substream: u8) -> SubstreamChoice {
        SubstreamChoice {
            mid: mid.into(),
            substream,
        }
    }

    #[test]
    fn fuller_grid_pages_get_smaller_tiles() {
        assert_eq!(TileSize::in_grid(1), TileSize::Large);
        assert_eq!(TileSize::in_grid(4), TileSize::Large);
        assert_eq!(TileSize::in_grid(5), TileSize::Medium);
        assert_eq!(TileSize::in_grid(9), TileSize::Medium);
        assert_eq!(TileSize::in_grid(10), TileSize::Small);
        assert_eq!(TileSize::in_grid(25), TileSize::Small);
    }

    #[test]
    fn tile_sizes_pick_substreams() {
        assert_eq!(TileSize::Large.substream(), 2);
        assert_eq!(TileSize::Medium.substream(), 1);
        assert_eq!(TileSize::Small.substream(), 0);
        assert_eq!(TileSize::Hidden.substream(), 0);
    }

    #[test]
    fn default_layout_shows_every_feed_large() {
        let layout = TileLayout::default();
        assert_eq!(layout.size(7), TileSize::Large);
        assert!(layout.shows(7));
    }

    #[test]
    fn shown_layout_hides_unlisted_feeds() {
        let layout = TileLayout::shown([
            (1, TileSize::Large),
            (2, TileSize::Small),
            (1, TileSize::Small),
            (4, TileSize::Medium),
        ]);
        assert_eq!(layout.size(1), TileSize::Large);
        assert_eq!(layout.size(2), TileSize::Small);
        assert_eq!(layout.size(3), TileSize::Hidden);
        assert_eq!(layout.size(4), TileSize::Medium);
        assert!(!layout.shows(3));
    }

    #[test]
    fn visible_layout_keeps_set_visible_meaning() {
        assert_eq!(TileLayout::visible(None), TileLayout::default());
        let layout = TileLayout::visible(Some(HashSet::from([4])));
        assert_eq!(layout.size(4), TileSize::Large);
        assert_eq!(layout.size(5), TileSize::Hidden);
    }

    #[test]
    fn requests_skip_audio_and_janus_default() {
        let streams = [
            stream("0", 1, MediaKind::Audio),
            stream("1", 1, MediaKind::Video),
            stream("3", 2, MediaKind::Video),
        ];
        let layout = TileLayout::shown([(1, TileSize::Large), (2, TileSize::Small)]);
        let requests = SubstreamRequests::default();
        assert_eq!(requests.changes(&layout, &streams), vec![choice("3", 0)]);
        let medium = TileLayout::shown([(1, TileSize::Medium), (2, TileSize::Large)]);
        assert_eq!(requests.changes(&medium, &streams), vec![choice("1", 1)]);
    }

    #[test]
    fn recorded_requests_are_not_repeated() {
        let streams = [stream("1", 1, MediaKind::Video)];
        let small = TileLayout::shown([(1, TileSize::Small)]);
        let mut requests = SubstreamRequests::default();
        let changes = requests.changes(&small, &streams);
        assert_eq!(changes, vec![choice("1", 0)]);
        requests.record(&streams, &changes);
        assert!(requests.changes(&small, &streams).is_empty());

        let hidden = TileLayout::shown([]);
        assert!(requests.changes(&hidden, &streams).is_empty());
        let large = TileLayout::shown([(1, TileSize::Large)]);
        assert_eq!(requests.changes(&large, &streams), vec![choice("1", 2)]);
    }

    #[test]
    fn reused_mid_starts_at_janus_default() {
        let mut requests = SubstreamRequests::default();
        let first = [stream("1", 1, MediaKind::Video)];
        requests.record(&first, &[choice("1", 0)]);
        // Janus gave the mid to feed 2, whose subscription starts at the top.
        let second = [stream("1", 2, MediaKind::Video)];
        let small = TileLayout::shown([(2, TileSize::Small)]);
        assert_eq!(requests.changes(&small, &second), vec![choice("1", 0)]);
        let large = TileLayout::shown([(2, TileSize::Large)]);
        assert!(requests.changes(&large, &second).is_empty());
    }
}
