//! Messages, replies, reactions, pins, search and attachments.

use std::sync::Arc;

use roomler_server::store::{Conflict, FileRecord, HistoryPage, Posted, Store};
use roomler_shared::model::{Mention, RoomKind};
use roomler_shared::ws::EventKind;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::fixtures::{
    all_events, assert_conflict, created, events_containing, join, new_message, post, recipients,
    room, tick, user,
};

pub async fn post_message_is_idempotent(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let other = room(&*store, ada.id, "other", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;

    let mut first = new_message(team.id, ada.id, "hello @bob");
    first.client_id = "client-1".into();
    first.mentions = vec![Mention::User {
        user_id: bob.id,
        username: "Bob".into(),
    }];
    let (message, fanout) = match store.post_message(first.clone()).await.unwrap() {
        Posted::Created(message, fanout) => (message, fanout),
        Posted::Existing(message) => panic!("the first post stored {message:?} before"),
    };
    assert_eq!(message.seq, 1);
    assert_eq!(message.body, "hello @bob");
    assert_eq!(message.author.id, ada.id);
    assert_eq!(message.client_id.as_deref(), Some("client-1"));
    assert_eq!(message.mentions, first.mentions);
    assert!(!message.deleted);
    assert_eq!(fanout.event.kind, EventKind::MessageCreated);
    assert_eq!(fanout.event.room_id, Some(team.id));
    assert_eq!(recipients(&fanout).len(), 2);

    match store.post_message(first.clone()).await.unwrap() {
        Posted::Existing(existing) => {
            assert_eq!(existing.id, message.id);
            assert_eq!(existing.body, "hello @bob");
        }
        Posted::Created(created, _) => panic!("a retry stored a second message {created:?}"),
    }
    let mut changed = first.clone();
    changed.body = "changed on retry".into();
    assert_conflict(store.post_message(changed).await, Conflict::ClientIdReused);
    let team_now = store.room_by_id(team.id).await.unwrap().unwrap();
    assert_eq!(team_now.last_seq, 1, "a retry takes no number");

    let mut elsewhere = first.clone();
    elsewhere.room_id = other.id;
    assert_conflict(
        store.post_message(elsewhere).await,
        Conflict::ClientIdReused,
    );

    // client_id is unique per author, not per room.
    let mut by_bob = new_message(team.id, bob.id, "me too");
    by_bob.client_id = "client-1".into();
    let bobs = created(store.post_message(by_bob).await);
    assert_eq!(bobs.seq, 2);
    let history = store
        .history(team.id, HistoryPage::Latest { limit: 10 })
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
}

pub async fn room_seq_contiguous_under_concurrency(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;

    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let message = new_message(team.id, ada.id, &format!("message {n}"));
                created(store.post_message(message).await).seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=20).collect::<Vec<i64>>());

    let team = store.room_by_id(team.id).await.unwrap().unwrap();
    assert_eq!(team.last_seq, 20);
    let history = store
        .history(
            team.id,
            HistoryPage::After {
                after: 0,
                limit: 100,
            },
        )
        .await
        .unwrap();
    let stored: Vec<i64> = history.iter().map(|message| message.seq).collect();
    assert_eq!(stored, (1..=20).collect::<Vec<i64>>());
}

pub async fn history_pages(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let other = room(&*store, ada.id, "other", RoomKind::Public, None).await;
    for n in 1..=10 {
        post(&*store, team.id, ada.id, &format!("message {n}")).await;
    }

    let seqs = |page| {
        let store = store.clone();
        async move {
            store
                .history(team.id, page)
                .await
                .unwrap()
                .iter()
                .map(|message| message.seq)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(
        seqs(HistoryPage::Latest { limit: 4 }).await,
        vec![10, 9, 8, 7]
    );
    assert_eq!(
        seqs(HistoryPage::Before {
            before: 7,
            limit: 3
        })
        .await,
        vec![6, 5, 4]
    );
    assert_eq!(
        seqs(HistoryPage::Before {
            before: 2,
            limit: 10
        })
        .await,
        vec![1]
    );
    assert_eq!(
        seqs(HistoryPage::After {
            after: 7,
            limit: 10
        })
        .await,
        vec![8, 9, 10]
    );
    assert_eq!(
        seqs(HistoryPage::After { after: 0, limit: 3 }).await,
        vec![1, 2, 3]
    );
    assert!(seqs(HistoryPage::Latest { limit: 0 }).await.is_empty());
    let first = store
        .history(team.id, HistoryPage::After { after: 0, limit: 1 })
        .await
        .unwrap();
    assert_eq!(first[0].body, "message 1");
    let empty = store
        .history(other.id, HistoryPage::Latest { limit: 10 })
        .await
        .unwrap();
    assert!(empty.is_empty());
}

pub async fn thread_and_reply_previews(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let parent = post(&*store, team.id, ada.id, "the **parent** text").await;
    let reply = |body: &str| {
        let mut message = new_message(team.id, ada.id, body);
        message.reply_to = Some(parent.id);
        message
    };
    let first = created(store.post_message(reply("first reply")).await);
    let second = created(store.post_message(reply("second reply")).await);

    let thread: Vec<Uuid> = store
        .thread(parent.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|message| message.id)
        .collect();
    assert_eq!(thread, vec![first.id, second.id]);
    assert_eq!(store.thread(parent.id, 1).await.unwrap().len(), 1);

    let preview = first.reply_to.clone().expect("a reply has a preview");
    assert_eq!(preview.id, parent.id);
    assert_eq!(preview.author.id, ada.id);
    assert!(
        preview.excerpt.contains("parent text"),
        "{}",
        preview.excerpt
    );
    assert!(!preview.deleted);
    let parent_now = store.message(parent.id).await.unwrap().unwrap();
    assert_eq!(parent_now.reply_count, 2);

    store.delete_message(second.id).await.unwrap();
    let parent_now = store.message(parent.id).await.unwrap().unwrap();
    assert_eq!(parent_now.reply_count, 1, "deleted replies are not counted");

    store.delete_message(parent.id).await.unwrap();
    let first_now = store.message(first.id).await.unwrap().unwrap();
    let preview = first_now.reply_to.expect("the preview stays");
    assert!(preview.deleted);
    assert_eq!(preview.excerpt, "");
}

pub async fn edit_scrubs_replaced_text(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;
    let original = post(&*store, team.id, ada.id, "secret alpha").await;
    let mut reply = new_message(team.id, bob.id, "a reply");
    reply.reply_to = Some(original.id);
    created(store.post_message(reply).await);
    assert!(!events_containing(&all_events(&*store, bob.id).await, "alpha").is_empty());

    let (edited, fanout) = store
        .edit_message(
            original.id,
            "public beta".into(),
            "<p>public beta</p>".into(),
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(edited.body, "public beta");
    assert!(edited.edited_at.is_some());
    assert_eq!(fanout.event.kind, EventKind::MessageEdited);
    assert_eq!(fanout.event.data["body"], "public beta");

    for user_id in [ada.id, bob.id] {
        let events = all_events(&*store, user_id).await;
        assert_eq!(
            events_containing(&events, "alpha"),
            Vec::<String>::new(),
            "events that still carry the replaced text"
        );
    }
    assert!(
        store
            .search(ada.id, "alpha", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let found = store.search(ada.id, "beta", None, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message.id, original.id);
}

pub async fn delete_scrubs_every_event(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;
    let doomed = post(&*store, team.id, ada.id, "classified gamma").await;
    store
        .set_reaction(doomed.id, bob.id, "👍", true)
        .await
        .unwrap();
    store.set_pin(doomed.id, Some(ada.id)).await.unwrap();
    let mut reply = new_message(team.id, bob.id, "about that");
    reply.reply_to = Some(doomed.id);
    created(store.post_message(reply).await);
    assert_eq!(store.counts().await.unwrap().messages, 2);

    let fanout = store.delete_message(doomed.id).await.unwrap();
    assert_eq!(fanout.event.kind, EventKind::MessageDeleted);
    assert_eq!(fanout.event.data["deleted"], true);

    let tombstone = store.message(doomed.id).await.unwrap().unwrap();
    assert!(tombstone.deleted);
    assert_eq!(tombstone.body, "");
    assert_eq!(tombstone.html, "");
    assert!(tombstone.reactions.is_empty());
    assert!(tombstone.pinned.is_none());
    assert_eq!(tombstone.seq, doomed.seq, "history keeps its shape");
    let meta = store.message_meta(doomed.id).await.unwrap().unwrap();
    assert!(meta.deleted);
    assert_eq!(meta.author_id, ada.id);
    assert_eq!(meta.room_id, team.id);

    for user_id in [ada.id, bob.id] {
        let events = all_events(&*store, user_id).await;
        assert_eq!(
            events_containing(&events, "gamma"),
            Vec::<String>::new(),
            "events that still carry the deleted text"
        );
    }
    assert!(store.pins(team.id).await.unwrap().is_empty());
    assert!(
        store
            .search(ada.id, "gamma", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.counts().await.unwrap().messages, 1);
}

pub async fn reactions_set_unset_idempotent(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;
    let message = post(&*store, team.id, ada.id, "ship it").await;

    let added = store
        .set_reaction(message.id, ada.id, "👍", true)
        .await
        .unwrap()
        .expect("a new reaction has an event");
    assert_eq!(added.event.kind, EventKind::ReactionAdded);
    assert_eq!(added.event.data["emoji"], "👍");
    assert_eq!(added.event.data["reactions"][0]["count"], 1);
    assert!(
        store
            .set_reaction(message.id, ada.id, "👍", true)
            .await
            .unwrap()
            .is_none(),
        "adding twice changes nothing"
    );

    tick().await;
    store
        .set_reaction(message.id, bob.id, "👍", true)
        .await
        .unwrap()
        .unwrap();
    tick().await;
    store
        .set_reaction(message.id, bob.id, "🎉", true)
        .await
        .unwrap()
        .unwrap();
    let reactions = store.message(message.id).await.unwrap().unwrap().reactions;
    let summary: Vec<(&str, u32, Vec<Uuid>)> = reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.count, r.user_ids.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![("👍", 2, vec![ada.id, bob.id]), ("🎉", 1, vec![bob.id])]
    );

    let removed = store
        .set_reaction(message.id, ada.id, "👍", false)
        .await
        .unwrap()
        .expect("a removal has an event");
    assert_eq!(removed.event.kind, EventKind::ReactionRemoved);
    assert!(
        store
            .set_reaction(message.id, ada.id, "👍", false)
            .await
            .unwrap()
            .is_none(),
        "removing twice changes nothing"
    );
    assert!(
        store
            .set_reaction(message.id, ada.id, "😀", false)
            .await
            .unwrap()
            .is_none()
    );
    let reactions = store.message(message.id).await.unwrap().unwrap().reactions;
    let summary: Vec<(&str, u32)> = reactions
        .iter()
        .map(|r| (r.emoji.as_str(), r.count))
        .collect();
    assert_eq!(summary, vec![("👍", 1), ("🎉", 1)]);
}

pub async fn pins_list_newest_first(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let first = post(&*store, team.id, ada.id, "first").await;
    post(&*store, team.id, ada.id, "second").await;
    let third = post(&*store, team.id, ada.id, "third").await;

    let (pinned, fanout) = store.set_pin(first.id, Some(ada.id)).await.unwrap();
    assert_eq!(fanout.event.kind, EventKind::MessagePinned);
    assert_eq!(pinned.pinned.as_ref().map(|pin| pin.by), Some(ada.id));
    tick().await;
    store.set_pin(third.id, Some(ada.id)).await.unwrap();

    let pins: Vec<Uuid> = store
        .pins(team.id)
        .await
        .unwrap()
        .iter()
        .map(|message| message.id)
        .collect();
    assert_eq!(pins, vec![third.id, first.id], "newest pin first");

    let (unpinned, fanout) = store.set_pin(third.id, None).await.unwrap();
    assert_eq!(fanout.event.kind, EventKind::MessageUnpinned);
    assert!(unpinned.pinned.is_none());
    let pins: Vec<Uuid> = store
        .pins(team.id)
        .await
        .unwrap()
        .iter()
        .map(|message| message.id)
        .collect();
    assert_eq!(pins, vec![first.id]);
}

pub async fn search_respects_membership(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let cy = user(&*store, "Cy").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let secret = room(&*store, ada.id, "secret", RoomKind::Private, None).await;
    join(&*store, team.id, bob.id).await;
    let public = post(&*store, team.id, ada.id, "deploy finished on friday").await;
    post(&*store, secret.id, ada.id, "deploy the secret plan").await;
    post(&*store, team.id, ada.id, "<b>release</b> now").await;

    let hits = |user_id, query: &'static str, room_id| {
        let store = store.clone();
        async move { store.search(user_id, query, room_id, 10).await.unwrap() }
    };
    let bobs = hits(bob.id, "deploy", None).await;
    assert_eq!(bobs.len(), 1, "only rooms the user is a member of");
    assert_eq!(bobs[0].message.id, public.id);
    assert!(
        bobs[0].snippet.contains("<mark>deploy</mark>"),
        "{}",
        bobs[0].snippet
    );

    assert_eq!(hits(ada.id, "deploy", None).await.len(), 2);
    assert_eq!(hits(ada.id, "DEPLOY", None).await.len(), 2, "ignores case");
    assert_eq!(hits(ada.id, "deploy", Some(team.id)).await.len(), 1);
    assert!(hits(bob.id, "deploy", Some(secret.id)).await.is_empty());
    assert!(hits(cy.id, "deploy", None).await.is_empty());
    assert_eq!(
        hits(ada.id, "deploy friday", None).await.len(),
        1,
        "every word must match"
    );
    assert!(hits(ada.id, "deploy nothing", None).await.is_empty());
    assert_eq!(
        hits(ada.id, "(deploy) !!!", None).await.len(),
        2,
        "punctuation around and between words is ignored"
    );
    assert!(hits(ada.id, "   ", None).await.is_empty());
    assert_eq!(
        store.search(ada.id, "deploy", None, 1).await.unwrap().len(),
        1
    );

    let escaped = hits(ada.id, "release", None).await;
    assert_eq!(escaped.len(), 1);
    assert!(
        escaped[0].snippet.contains("&lt;b&gt;<mark>release</mark>"),
        "{}",
        escaped[0].snippet
    );
    assert!(
        !escaped[0].snippet.contains("<b>"),
        "{}",
        escaped[0].snippet
    );

    join(&*store, secret.id, bob.id).await;
    assert_eq!(hits(bob.id, "deploy", None).await.len(), 2);
}

pub async fn attachments_and_room_files(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let file = |name: &str| FileRecord {
        id: Uuid::now_v7(),
        sha256: "cd".repeat(32),
        size: 42,
        mime: "image/png".into(),
        name: name.to_string(),
        uploader_id: ada.id,
        room_id: Some(team.id),
        thumbnail_sha256: Some("ef".repeat(32)),
        created_at: OffsetDateTime::now_utc(),
    };
    let attached = file("chart.png");
    let loose = file("unused.png");
    store.create_file(attached.clone()).await.unwrap();
    store.create_file(loose.clone()).await.unwrap();

    let stored = store.file(attached.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "chart.png");
    assert_eq!(stored.size, 42);
    assert_eq!(stored.mime, "image/png");
    assert_eq!(stored.uploader_id, ada.id);
    assert_eq!(stored.room_id, Some(team.id));
    assert_eq!(stored.sha256, attached.sha256);
    assert!(store.file(Uuid::now_v7()).await.unwrap().is_none());

    let mut message = new_message(team.id, ada.id, "the chart");
    message.attachments = vec![attached.id];
    let message = created(store.post_message(message).await);
    assert_eq!(message.attachments.len(), 1);
    let attachment = &message.attachments[0];
    assert_eq!(attachment.id, attached.id);
    assert_eq!(attachment.name, "chart.png");
    assert_eq!(attachment.url, format!("/api/files/{}", attached.id));
    assert_eq!(
        attachment.thumbnail_url,
        Some(format!("/api/files/{}/thumbnail", attached.id))
    );

    let listed: Vec<Uuid> = store
        .room_files(team.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|file| file.id)
        .collect();
    assert_eq!(listed, vec![attached.id], "only attached files are listed");
    assert!(store.room_files(team.id, 0).await.unwrap().is_empty());

    store.delete_message(message.id).await.unwrap();
    assert!(store.room_files(team.id, 10).await.unwrap().is_empty());
    assert!(store.file(attached.id).await.unwrap().is_some());
}

pub async fn search_snippet_marks_are_balanced(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    // U+0001 and U+0002 are what SQLite's snippet() is asked to put around matches.
    post(&*store, team.id, ada.id, "stray \u{1} opener then deploy").await;
    post(&*store, team.id, ada.id, "deploy then a stray \u{2} closer").await;

    let hits = store.search(ada.id, "deploy", None, 10).await.unwrap();
    assert_eq!(hits.len(), 2);
    for hit in &hits {
        let opened = hit.snippet.matches("<mark>").count();
        let closed = hit.snippet.matches("</mark>").count();
        assert_eq!(opened, closed, "unbalanced snippet {:?}", hit.snippet);
        assert!(hit.snippet.contains("deploy</mark>"), "{:?}", hit.snippet);
    }
}
