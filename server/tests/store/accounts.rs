//! Users and sessions.

use std::sync::Arc;

use roomler_server::store::{Conflict, NewUser, Store};
use roomler_shared::ws::EventKind;
use uuid::Uuid;

use crate::fixtures::{assert_conflict, new_user, tick, user};

pub async fn create_user_returns_record(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    assert_eq!(ada.username, "Ada");
    assert_eq!(ada.username_key, "ada");
    assert_eq!(ada.email, "ada@example.com");
    assert_eq!(ada.password_hash, "hash-of-Ada");
    assert!(!ada.disabled);
    assert_eq!(ada.avatar_file_id, None);

    let found = store.user_by_id(ada.id).await.unwrap().unwrap();
    assert_eq!(found.username, "Ada");
    assert_eq!(found.created_at, ada.created_at);
    assert!(store.user_by_id(Uuid::now_v7()).await.unwrap().is_none());

    let by_key = store.user_by_login("ada").await.unwrap().unwrap();
    assert_eq!(by_key.id, ada.id);
    let by_email = store
        .user_by_login("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.id, ada.id);
    assert!(store.user_by_login("nobody").await.unwrap().is_none());

    tick().await;
    let bob = user(&*store, "Bob").await;
    let listed: Vec<Uuid> = store
        .list_users()
        .await
        .unwrap()
        .iter()
        .map(|user| user.id)
        .collect();
    assert_eq!(listed, vec![ada.id, bob.id], "ordered by creation");
}

pub async fn create_user_conflicts(store: Arc<dyn Store>) {
    user(&*store, "Ada").await;

    let same_key = NewUser {
        email: "other@example.com".into(),
        ..new_user("ADA")
    };
    assert_conflict(store.create_user(same_key).await, Conflict::UsernameTaken);

    let same_email = NewUser {
        email: "ada@example.com".into(),
        ..new_user("Ada2")
    };
    assert_conflict(store.create_user(same_email).await, Conflict::EmailTaken);

    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

pub async fn users_by_keys_keeps_order(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    let keys = ["bob".to_string(), "nobody".to_string(), "ada".to_string()];
    let found: Vec<Uuid> = store
        .users_by_keys(&keys)
        .await
        .unwrap()
        .iter()
        .map(|user| user.id)
        .collect();
    assert_eq!(found, vec![bob.id, ada.id]);
    assert!(store.users_by_keys(&[]).await.unwrap().is_empty());
}

pub async fn update_profile_notifies_user(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let avatar = Uuid::now_v7();

    let (updated, fanout) = store
        .update_profile(ada.id, Some("Ada L.".into()), Some(avatar))
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Ada L.");
    assert_eq!(updated.avatar_file_id, Some(avatar));
    assert_eq!(fanout.event.kind, EventKind::UserUpdated);
    assert_eq!(fanout.event.room_id, None);
    assert_eq!(fanout.recipients, vec![(ada.id, 1)]);
    assert_eq!(fanout.event.data["display_name"], "Ada L.");
    assert_eq!(
        fanout.event.data["avatar_url"],
        format!("/api/users/{}/avatar", ada.id)
    );

    let (unchanged, fanout) = store.update_profile(ada.id, None, None).await.unwrap();
    assert_eq!(unchanged.display_name, "Ada L.");
    assert_eq!(fanout.recipients, vec![(ada.id, 2)]);
    let stored = store.user_by_id(ada.id).await.unwrap().unwrap();
    assert_eq!(stored.display_name, "Ada L.");
}

pub async fn sessions_resolve_until_deleted(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    store.create_session("token-1", ada.id).await.unwrap();

    let found = store.session_user("token-1").await.unwrap().unwrap();
    assert_eq!(found.id, ada.id);
    assert!(store.session_user("unknown").await.unwrap().is_none());

    store.delete_session("token-1").await.unwrap();
    assert!(store.session_user("token-1").await.unwrap().is_none());
    store.delete_session("token-1").await.unwrap();
}

pub async fn set_password_ends_sessions(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    let bob = user(&*store, "Bob").await;
    store.create_session("ada-1", ada.id).await.unwrap();
    store.create_session("ada-2", ada.id).await.unwrap();
    store.create_session("bob-1", bob.id).await.unwrap();

    store.set_password(ada.id, "new-hash".into()).await.unwrap();
    assert!(store.session_user("ada-1").await.unwrap().is_none());
    assert!(store.session_user("ada-2").await.unwrap().is_none());
    assert!(store.session_user("bob-1").await.unwrap().is_some());
    let stored = store.user_by_id(ada.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "new-hash");
}

pub async fn disabled_user_has_no_session(store: Arc<dyn Store>) {
    let ada = user(&*store, "Ada").await;
    store.create_session("before", ada.id).await.unwrap();

    store.set_disabled(ada.id, true).await.unwrap();
    assert!(store.session_user("before").await.unwrap().is_none());
    assert!(store.user_by_id(ada.id).await.unwrap().unwrap().disabled);

    // A session of a disabled account does not resolve while it stays disabled.
    store.create_session("during", ada.id).await.unwrap();
    assert!(store.session_user("during").await.unwrap().is_none());

    store.set_disabled(ada.id, false).await.unwrap();
    assert!(!store.user_by_id(ada.id).await.unwrap().unwrap().disabled);
    assert!(store.session_user("during").await.unwrap().is_some());
    assert!(store.session_user("before").await.unwrap().is_none());
}
