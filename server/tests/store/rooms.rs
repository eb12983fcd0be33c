//! Rooms, sub-rooms, direct rooms, membership, bans and invites.

use std::sync::Arc;

use roomler_server::store::{
    Conflict, Departure, FileRecord, InviteRecord, NewDirect, NewRoom, RoomChanges, Store,
};
use roomler_shared::model::{Role, RoomKind};
use roomler_shared::ws::EventKind;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::fixtures::{
    all_events, assert_conflict, join, new_message, post, recipients, room, sorted, user,
};

pub async fn create_room_makes_creator_owner(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let (team, fanout) = store
        .create_room(NewRoom {
            name: "team".into(),
            path: "team".into(),
            kind: RoomKind::Public,
            parent_id: None,
            topic: "all of us".into(),
            password_hash: None,
            creator_id: ada.id,
        })
        .await
        .unwrap();
    assert_eq!(team.name, "team");
    assert_eq!(team.path, "team");
    assert_eq!(team.kind, RoomKind::Public);
    assert_eq!(team.topic, "all of us");
    assert_eq!(team.parent_id, None);
    assert_eq!(team.owner_id, Some(ada.id));
    assert_eq!(team.member_count, 1);
    assert_eq!(team.last_seq, 0);
    assert_eq!(team.password_hash, None);

    assert_eq!(fanout.event.kind, EventKind::RoomCreated);
    assert_eq!(fanout.event.room_id, Some(team.id));
    assert_eq!(fanout.recipients, vec![(ada.id, 1)]);
    assert_eq!(fanout.event.data["path"], "team");

    let membership = store.membership(team.id, ada.id).await.unwrap().unwrap();
    assert_eq!(membership.role, Role::Owner);
    let by_path = store.room_by_path("team").await.unwrap().unwrap();
    assert_eq!(by_path.id, team.id);
    let by_id = store.room_by_id(team.id).await.unwrap().unwrap();
    assert_eq!(by_id.path, "team");
    assert!(store.room_by_path("nowhere").await.unwrap().is_none());

    let mine = store.rooms_of_user(ada.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].0.id, team.id);
    assert_eq!(mine[0].1, Role::Owner);
    assert_eq!(store.all_rooms().await.unwrap().len(), 1);
}

pub async fn room_path_conflicts(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    room(&*store, ada.id, "team", RoomKind::Public, None).await;

    let again = store
        .create_room(NewRoom {
            name: "team".into(),
            path: "team".into(),
            kind: RoomKind::Private,
            parent_id: None,
            topic: String::new(),
            password_hash: None,
            creator_id: bob.id,
        })
        .await;
    assert_conflict(again, Conflict::RoomPathTaken);
    assert_eq!(store.all_rooms().await.unwrap().len(), 1);
    assert!(store.rooms_of_user(bob.id).await.unwrap().is_empty());
}

pub async fn public_subroom_reaches_parent_members(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;

    let public = store
        .create_room(NewRoom {
            name: "dev".into(),
            path: "team.dev".into(),
            kind: RoomKind::Public,
            parent_id: Some(team.id),
            topic: String::new(),
            password_hash: None,
            creator_id: ada.id,
        })
        .await
        .unwrap();
    assert_eq!(recipients(&public.1), sorted(vec![ada.id, bob.id]));
    assert_eq!(public.0.parent_id, Some(team.id));

    let private = store
        .create_room(NewRoom {
            name: "ops".into(),
            path: "team.ops".into(),
            kind: RoomKind::Private,
            parent_id: Some(team.id),
            topic: String::new(),
            password_hash: None,
            creator_id: ada.id,
        })
        .await
        .unwrap();
    assert_eq!(recipients(&private.1), vec![ada.id]);

    let children: Vec<String> = store
        .child_rooms(team.id)
        .await
        .unwrap()
        .into_iter()
        .map(|room| room.path)
        .collect();
    assert_eq!(children, vec!["team.dev", "team.ops"]);
}

pub async fn direct_room_dedupes_pairs(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let cy = user(&*store, "Cy").await;

    let (pair, fanout) = store
        .create_direct(NewDirect {
            creator_id: ada.id,
            member_ids: vec![ada.id, bob.id],
        })
        .await
        .unwrap();
    let fanout = fanout.expect("a new direct room has an event");
    assert_eq!(fanout.event.kind, EventKind::RoomCreated);
    assert_eq!(recipients(&fanout), sorted(vec![ada.id, bob.id]));
    assert_eq!(pair.kind, RoomKind::Direct);
    assert_eq!(pair.member_count, 2);
    assert_eq!(pair.name, "");
    assert!(pair.path.starts_with("@direct-"), "{}", pair.path);
    assert_eq!(pair.owner_id, None);

    let (again, fanout) = store
        .create_direct(NewDirect {
            creator_id: bob.id,
            member_ids: vec![bob.id, ada.id],
        })
        .await
        .unwrap();
    assert_eq!(again.id, pair.id, "one direct room per pair");
    assert!(fanout.is_none());

    let group = vec![ada.id, bob.id, cy.id];
    let (first, _) = store
        .create_direct(NewDirect {
            creator_id: ada.id,
            member_ids: group.clone(),
        })
        .await
        .unwrap();
    let (second, fanout) = store
        .create_direct(NewDirect {
            creator_id: ada.id,
            member_ids: group,
        })
        .await
        .unwrap();
    assert_ne!(first.id, second.id, "groups may have several rooms");
    assert!(fanout.is_some());
    assert_eq!(second.member_count, 3);
}

pub async fn add_member_conflicts_and_lists(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;

    let fanout = store
        .add_member(team.id, bob.id, Role::Member)
        .await
        .unwrap();
    assert_eq!(fanout.event.kind, EventKind::MemberJoined);
    assert_eq!(fanout.event.room_id, Some(team.id));
    assert_eq!(recipients(&fanout), sorted(vec![ada.id, bob.id]));
    assert_eq!(fanout.event.data["user_id"], bob.id.to_string());
    assert_eq!(fanout.event.data["member"]["role"], "member");

    assert_conflict(
        store.add_member(team.id, bob.id, Role::Member).await,
        Conflict::AlreadyMember,
    );

    let members = store.members(team.id).await.unwrap();
    let listed: Vec<(&str, Role)> = members
        .iter()
        .map(|member| (member.user.username.as_str(), member.role))
        .collect();
    assert_eq!(listed, vec![("Ada", Role::Owner), ("Bob", Role::Member)]);
    let team = store.room_by_id(team.id).await.unwrap().unwrap();
    assert_eq!(team.member_count, 2);
}

pub async fn roles_and_ownership_transfer(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;

    let fanout = store
        .set_role(team.id, bob.id, Role::Moderator)
        .await
        .unwrap();
    assert_eq!(fanout.event.kind, EventKind::MemberRoleChanged);
    assert_eq!(fanout.event.data["member"]["role"], "moderator");
    let role = |user| {
        let store = store.clone();
        async move { store.membership(team.id, user).await.unwrap().unwrap().role }
    };
    assert_eq!(role(bob.id).await, Role::Moderator);

    let fanouts = store
        .transfer_ownership(team.id, ada.id, bob.id)
        .await
        .unwrap();
    let kinds: Vec<EventKind> = fanouts.iter().map(|f| f.event.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::MemberRoleChanged,
            EventKind::MemberRoleChanged,
            EventKind::RoomUpdated
        ]
    );
    assert_eq!(role(bob.id).await, Role::Owner);
    assert_eq!(role(ada.id).await, Role::Moderator);
    let team = store.room_by_id(team.id).await.unwrap().unwrap();
    assert_eq!(team.owner_id, Some(bob.id));
}

pub async fn remove_member_leaves_subtree(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let dev = room(&*store, ada.id, "team.dev", RoomKind::Public, Some(team.id)).await;
    let ops = room(
        &*store,
        ada.id,
        "team.dev.ops",
        RoomKind::Private,
        Some(dev.id),
    )
    .await;
    let other = room(&*store, ada.id, "other", RoomKind::Public, None).await;
    for room in [team.id, dev.id, ops.id, other.id] {
        join(&*store, room, bob.id).await;
    }

    let fanouts = store
        .remove_member(team.id, bob.id, Departure::Left)
        .await
        .unwrap();
    let rooms: Vec<Option<Uuid>> = fanouts.iter().map(|f| f.event.room_id).collect();
    assert_eq!(
        rooms,
        vec![Some(ops.id), Some(dev.id), Some(team.id)],
        "deepest room first"
    );
    for fanout in &fanouts {
        assert_eq!(fanout.event.kind, EventKind::MemberLeft);
        assert_eq!(recipients(fanout), sorted(vec![ada.id, bob.id]));
        assert!(fanout.event.data["member"].is_null());
    }
    for room in [team.id, dev.id, ops.id] {
        assert!(store.membership(room, bob.id).await.unwrap().is_none());
    }
    assert!(store.membership(other.id, bob.id).await.unwrap().is_some());

    let none = store
        .remove_member(team.id, bob.id, Departure::Kicked { by: ada.id })
        .await
        .unwrap();
    assert!(none.is_empty(), "a non-member leaves nothing");
}

pub async fn ban_records_and_unban(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;
    assert!(!store.is_banned(team.id, bob.id).await.unwrap());

    let fanouts = store
        .remove_member(team.id, bob.id, Departure::Banned { by: ada.id })
        .await
        .unwrap();
    assert_eq!(fanouts.len(), 1);
    assert_eq!(fanouts[0].event.kind, EventKind::MemberBanned);
    assert!(store.is_banned(team.id, bob.id).await.unwrap());
    assert!(store.membership(team.id, bob.id).await.unwrap().is_none());
    let bans = store.bans(team.id).await.unwrap();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0].user_id, bob.id);
    assert_eq!(bans[0].banned_by, ada.id);

    assert!(store.unban(team.id, bob.id).await.unwrap());
    assert!(!store.is_banned(team.id, bob.id).await.unwrap());
    assert!(!store.unban(team.id, bob.id).await.unwrap());
    assert!(store.bans(team.id).await.unwrap().is_empty());
}

pub async fn rename_renames_descendant_paths(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let dev = room(&*store, ada.id, "team.dev", RoomKind::Public, Some(team.id)).await;
    let ops = room(
        &*store,
        ada.id,
        "team.dev.ops",
        RoomKind::Public,
        Some(dev.id),
    )
    .await;
    let lookalike = room(&*store, ada.id, "teamwork", RoomKind::Public, None).await;

    let changes = RoomChanges {
        name: Some("crew".into()),
        ..RoomChanges::default()
    };
    let (renamed, fanouts) = store.update_room(team.id, changes).await.unwrap();
    assert_eq!(renamed.name, "crew");
    assert_eq!(renamed.path, "crew");
    assert_eq!(fanouts.len(), 3, "the room and its two descendants");
    assert!(
        fanouts
            .iter()
            .all(|f| f.event.kind == EventKind::RoomUpdated)
    );

    let path_of = |id| {
        let store = store.clone();
        async move { store.room_by_id(id).await.unwrap().unwrap().path }
    };
    assert_eq!(path_of(dev.id).await, "crew.dev");
    assert_eq!(path_of(ops.id).await, "crew.dev.ops");
    assert_eq!(path_of(lookalike.id).await, "teamwork");
    assert!(store.room_by_path("team.dev").await.unwrap().is_none());
    let dev_now = store.room_by_path("crew.dev").await.unwrap().unwrap();
    assert_eq!(dev_now.name, "dev");

    // A rename that collides changes nothing, descendants included.
    room(&*store, ada.id, "crew.qa", RoomKind::Public, Some(team.id)).await;
    let collide = RoomChanges {
        name: Some("qa".into()),
        ..RoomChanges::default()
    };
    assert_conflict(
        store.update_room(dev.id, collide).await,
        Conflict::RoomPathTaken,
    );
    assert_eq!(path_of(dev.id).await, "crew.dev");
    assert_eq!(path_of(ops.id).await, "crew.dev.ops");
}

pub async fn update_room_topic_and_password(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Private, None).await;

    let changes = RoomChanges {
        topic: Some("release week".into()),
        password_hash: Some(Some("room-hash".into())),
        ..RoomChanges::default()
    };
    let (updated, fanouts) = store.update_room(team.id, changes).await.unwrap();
    assert_eq!(updated.topic, "release week");
    assert_eq!(updated.password_hash.as_deref(), Some("room-hash"));
    assert!(updated.to_model(None).has_password);
    assert_eq!(fanouts.len(), 1);
    assert_eq!(fanouts[0].event.kind, EventKind::RoomUpdated);
    assert_eq!(fanouts[0].event.data["topic"], "release week");

    let clear = RoomChanges {
        password_hash: Some(None),
        ..RoomChanges::default()
    };
    let (cleared, _) = store.update_room(team.id, clear).await.unwrap();
    assert_eq!(cleared.password_hash, None);
    assert_eq!(cleared.topic, "release week", "other fields stay");
    let stored = store.room_by_id(team.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, None);
}

pub async fn directory_lists_public_tree(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let alpha = room(&*store, ada.id, "alpha", RoomKind::Public, None).await;
    room(
        &*store,
        ada.id,
        "alpha.beta",
        RoomKind::Public,
        Some(alpha.id),
    )
    .await;
    room(
        &*store,
        ada.id,
        "alpha.hidden",
        RoomKind::Private,
        Some(alpha.id),
    )
    .await;
    let secret = room(&*store, ada.id, "secret", RoomKind::Private, None).await;
    room(
        &*store,
        ada.id,
        "secret.inner",
        RoomKind::Public,
        Some(secret.id),
    )
    .await;
    room(&*store, ada.id, "gamma", RoomKind::Public, None).await;

    let paths = |query: &'static str, limit| {
        let store = store.clone();
        async move {
            store
                .directory(query, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|room| room.path)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(paths("", 10).await, vec!["alpha", "alpha.beta", "gamma"]);
    assert_eq!(paths("BETA", 10).await, vec!["alpha.beta"]);
    assert_eq!(paths("", 2).await, vec!["alpha", "alpha.beta"]);
    assert!(paths("zzz", 10).await.is_empty());
    assert!(
        paths("%", 10).await.is_empty(),
        "LIKE wildcards are literal"
    );
    assert!(
        paths("_", 10).await.is_empty(),
        "LIKE wildcards are literal"
    );
    assert!(paths("", 0).await.is_empty());
}

pub async fn delete_room_cascades(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let cy = user(&*store, "Cy").await;
    let team = room(&*store, ada.id, "team", RoomKind::Public, None).await;
    let dev = room(&*store, ada.id, "team.dev", RoomKind::Public, Some(team.id)).await;
    let other = room(&*store, ada.id, "other", RoomKind::Public, None).await;
    join(&*store, team.id, bob.id).await;
    join(&*store, team.id, cy.id).await;
    store
        .remove_member(team.id, cy.id, Departure::Banned { by: ada.id })
        .await
        .unwrap();

    let in_team = post(&*store, team.id, bob.id, "team message").await;
    store
        .set_reaction(in_team.id, ada.id, "👍", true)
        .await
        .unwrap();
    let file = FileRecord {
        id: Uuid::now_v7(),
        sha256: "ab".repeat(32),
        size: 5,
        mime: "text/plain".into(),
        name: "notes.txt".into(),
        uploader_id: ada.id,
        room_id: Some(dev.id),
        thumbnail_sha256: None,
        created_at: OffsetDateTime::now_utc(),
    };
    store.create_file(file.clone()).await.unwrap();
    let mut with_file = new_message(dev.id, ada.id, "see the notes");
    with_file.attachments = vec![file.id];
    let in_dev = crate::fixtures::created(store.post_message(with_file).await);
    store
        .create_invite(InviteRecord {
            code_hash: "team-invite".into(),
            room_id: team.id,
            created_by: ada.id,
            expires_at: OffsetDateTime::now_utc() + time::Duration::days(1),
            single_use: false,
        })
        .await
        .unwrap();
    let in_other = post(&*store, other.id, ada.id, "elsewhere").await;

    let fanouts = store.delete_room(team.id).await.unwrap();
    let deleted: Vec<Option<Uuid>> = fanouts.iter().map(|f| f.event.room_id).collect();
    assert_eq!(
        deleted,
        vec![Some(dev.id), Some(team.id)],
        "sub-rooms first"
    );
    for fanout in &fanouts {
        assert_eq!(fanout.event.kind, EventKind::RoomDeleted);
    }
    assert_eq!(recipients(&fanouts[1]), sorted(vec![ada.id, bob.id]));
    assert_eq!(fanouts[1].event.data["id"], team.id.to_string());

    assert!(store.room_by_id(team.id).await.unwrap().is_none());
    assert!(store.room_by_id(dev.id).await.unwrap().is_none());
    assert!(store.message(in_team.id).await.unwrap().is_none());
    assert!(store.message(in_dev.id).await.unwrap().is_none());
    assert!(store.file(file.id).await.unwrap().is_none());
    assert!(store.find_invite("team-invite").await.unwrap().is_none());
    assert!(!store.is_banned(team.id, cy.id).await.unwrap());
    assert!(store.rooms_of_user(bob.id).await.unwrap().is_empty());
    let ada_rooms: Vec<Uuid> = store
        .rooms_of_user(ada.id)
        .await
        .unwrap()
        .iter()
        .map(|(room, _)| room.id)
        .collect();
    assert_eq!(ada_rooms, vec![other.id]);
    assert!(store.message(in_other.id).await.unwrap().is_some());

    let counts = store.counts().await.unwrap();
    assert_eq!(counts.rooms, 1);
    assert_eq!(counts.messages, 1);
    assert_eq!(counts.files, 0);

    // Only the deletions are left of the deleted rooms' events.
    for user_id in [ada.id, bob.id] {
        for event in all_events(&*store, user_id).await {
            let about_deleted = event.room_id == Some(team.id) || event.room_id == Some(dev.id);
            if about_deleted {
                assert_eq!(event.kind, EventKind::RoomDeleted, "{event:?}");
            }
        }
    }
}

pub async fn invites_find_and_redeem(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let team = room(&*store, ada.id, "team", RoomKind::Private, None).await;
    let invite = |code: &str, single_use, expires_at| InviteRecord {
        code_hash: code.to_string(),
        room_id: team.id,
        created_by: ada.id,
        expires_at,
        single_use,
    };
    let tomorrow = OffsetDateTime::now_utc() + time::Duration::days(1);
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    store
        .create_invite(invite("multi", false, tomorrow))
        .await
        .unwrap();
    store
        .create_invite(invite("single", true, tomorrow))
        .await
        .unwrap();
    store
        .create_invite(invite("expired", false, past))
        .await
        .unwrap();

    let found = store.find_invite("multi").await.unwrap().unwrap();
    assert_eq!(found.room_id, team.id);
    assert_eq!(found.created_by, ada.id);
    assert!(!found.single_use);
    assert!(store.redeem_invite("multi").await.unwrap().is_some());
    assert!(store.redeem_invite("multi").await.unwrap().is_some());
    assert!(store.find_invite("multi").await.unwrap().is_some());

    let single = store.find_invite("single").await.unwrap().unwrap();
    assert!(single.single_use);
    assert!(store.redeem_invite("single").await.unwrap().is_some());
    assert!(
        store.redeem_invite("single").await.unwrap().is_none(),
        "single use"
    );
    assert!(store.find_invite("single").await.unwrap().is_none());

    assert!(store.find_invite("expired").await.unwrap().is_none());
    assert!(store.redeem_invite("expired").await.unwrap().is_none());
    assert!(store.find_invite("unknown").await.unwrap().is_none());
    assert!(store.redeem_invite("unknown").await.unwrap().is_none());
}
