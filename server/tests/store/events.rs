//! Per-user event streams, pruning and counts.

use std::sync::Arc;

use roomler_server::store::{Posted, Store, StreamBounds};
use roomler_shared::model::RoomKind;
use roomler_shared::ws::EventKind;
use time::OffsetDateTime;

use crate::fixtures::{all_events, join, new_message, post, room, user};

pub async fn user_seq_matches_fanouts(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let (team, created) = store
        .create_room(roomler_server::store::NewRoom {
            name: "team".into(),
            path: "team".into(),
            kind: RoomKind::Public,
            parent_id: None,
            topic: String::new(),
            password_hash: None,
            creator_id: ada.id,
        })
        .await
        .unwrap();
    let joined = store
        .add_member(team.id, bob.id, roomler_shared::model::Role::Member)
        .await
        .unwrap();
    let mut fanouts = vec![created, joined];
    for n in 1..=3 {
        match store
            .post_message(new_message(team.id, ada.id, &format!("message {n}")))
            .await
            .unwrap()
        {
            Posted::Created(_, fanout) => fanouts.push(fanout),
            Posted::Existing(message) => panic!("a fresh client_id matched {message:?}"),
        }
    }

    let ada_events = all_events(&*store, ada.id).await;
    let seqs: Vec<i64> = ada_events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let kinds: Vec<EventKind> = ada_events.iter().map(|event| event.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::RoomCreated,
            EventKind::MemberJoined,
            EventKind::MessageCreated,
            EventKind::MessageCreated,
            EventKind::MessageCreated,
        ]
    );

    let bob_events = all_events(&*store, bob.id).await;
    let seqs: Vec<i64> = bob_events.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4], "bob's stream starts when he joins");

    // What a fanout delivers live equals what a resuming client replays.
    for user_id in [ada.id, bob.id] {
        let replayed = all_events(&*store, user_id).await;
        for fanout in &fanouts {
            let Some(live) = fanout.event_for(user_id) else {
                continue;
            };
            let stored = replayed
                .iter()
                .find(|event| event.seq == live.seq)
                .unwrap_or_else(|| panic!("seq {} of {user_id} was not stored", live.seq));
            assert_eq!(stored.kind, live.kind);
            assert_eq!(stored.room_id, live.room_id);
            assert_eq!(stored.data, live.data, "payload of {}", live.kind.as_str());
        }
    }
    assert_eq!(
        store.stream_bounds(ada.id).await.unwrap(),
        StreamBounds {
            floor: 0,
            latest: 5
        }
    );
}

pub async fn user_seq_contiguous_under_concurrency(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;

    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            let author = if n % 2 == 0 { ada.id } else { bob.id };
            tokio::spawn(async move {
                let message = new_message(team.id, author, &format!("message {n}"));
                store.post_message(message).await.unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    // Ada: the room, Bob joining, 20 messages. Bob: joining, 20 messages.
    for (user_id, expected) in [(ada.id, 22), (bob.id, 21)] {
        let seqs: Vec<i64> = all_events(&*store, user_id)
            .await
            .iter()
            .map(|event| event.seq)
            .collect();
        assert_eq!(seqs, (1..=expected).collect::<Vec<i64>>(), "{user_id}");
        let bounds = store.stream_bounds(user_id).await.unwrap();
        assert_eq!(bounds.latest, expected);
    }
}

pub async fn events_since_pages(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    for n in 1..=4 {
        post(&*store, team.id, ada.id, &format!("message {n}")).await;
    }

    let seqs = |since, limit| {
        let store = store.clone();
        async move {
            store
                .events_since(ada.id, since, limit)
                .await
                .unwrap()
                .iter()
                .map(|event| event.seq)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(seqs(2, 2).await, vec![3, 4]);
    assert_eq!(seqs(0, 100).await, vec![1, 2, 3, 4, 5]);
    assert!(seqs(5, 10).await.is_empty());
    assert!(seqs(0, 0).await.is_empty());
    let page = store.events_since(ada.id, 1, 1).await.unwrap();
    assert_eq!(page[0].kind, EventKind::MessageCreated);
    assert_eq!(page[0].room_id, Some(team.id));
    assert_eq!(page[0].data["body"], "message 1");
}

pub async fn stream_bounds_and_prune(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let idle = user(&*store, "Idle").await;
    assert_eq!(
        store.stream_bounds(idle.id).await.unwrap(),
        StreamBounds {
            floor: 0,
            latest: 0
        }
    );

    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    post(&*store, team.id, ada.id, "before the cutoff").await;
    assert_eq!(
        store.stream_bounds(ada.id).await.unwrap(),
        StreamBounds {
            floor: 0,
            latest: 2
        }
    );

    let an_hour_ago = OffsetDateTime::now_utc() - time::Duration::hours(1);
    assert_eq!(store.prune_events(an_hour_ago).await.unwrap(), 0);
    assert_eq!(store.stream_bounds(ada.id).await.unwrap().floor, 0);

    let soon = OffsetDateTime::now_utc() + time::Duration::minutes(1);
    assert_eq!(
        store.prune_events(soon).await.unwrap(),
        2,
        "deliveries dropped"
    );
    assert_eq!(
        store.stream_bounds(ada.id).await.unwrap(),
        StreamBounds {
            floor: 2,
            latest: 2
        },
        "with nothing kept, everything up to latest is gone"
    );
    assert!(all_events(&*store, ada.id).await.is_empty());
    assert_eq!(store.counts().await.unwrap().events, 0);

    post(&*store, team.id, ada.id, "after the cutoff").await;
    assert_eq!(
        store.stream_bounds(ada.id).await.unwrap(),
        StreamBounds {
            floor: 2,
            latest: 3
        }
    );
    let retained: Vec<i64> = all_events(&*store, ada.id)
        .await
        .iter()
        .map(|event| event.seq)
        .collect();
    assert_eq!(retained, vec![3]);
}

pub async fn counts_track_writes(store: Arc<dyn Store>) {
    let empty = store.counts().await.unwrap();
    assert_eq!(
        (
            empty.users,
            empty.rooms,
            empty.messages,
            empty.files,
            empty.sessions,
            empty.events
        ),
        (0, 0, 0, 0, 0, 0)
    );

    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    store.create_session("token", ada.id).await.unwrap();
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;
    let first = post(&*store, team.id, ada.id, "one").await;
    post(&*store, team.id, bob.id, "two").await;
    store
        .create_file(roomler_server::store::FileRecord {
            id: uuid::Uuid::now_v7(),
            sha256: "12".repeat(32),
            size: 1,
            mime: "text/plain".into(),
            name: "a.txt".into(),
            uploader_id: ada.id,
            room_id: Some(team.id),
            thumbnail_sha256: None,
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();

    let counts = store.counts().await.unwrap();
    assert_eq!(counts.users, 2);
    assert_eq!(counts.sessions, 1);
    assert_eq!(counts.rooms, 1);
    assert_eq!(counts.messages, 2);
    assert_eq!(counts.files, 1);
    assert_eq!(
        counts.events, 4,
        "room created, member joined, two messages"
    );

    store.delete_message(first.id).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.messages, 1, "tombstones are not counted");
    assert_eq!(counts.events, 5);
}
