//! Users and sessions.

use std::collections::HashMap;

use mongodb::ClientSession;
use mongodb::bson::{DateTime, doc};
use roomler_shared::ws::EventKind;
use uuid::Uuid;

use super::documents::{SessionDoc, UserDoc};
use super::events::{Audience, emit};
use super::{Db, collect, conflict, index};
use crate::store::{Conflict, Fanout, NewUser, StoreResult, UserRecord};

pub(super) async fn create_user(
    s: &mut ClientSession,
    db: &Db,
    new: NewUser,
) -> StoreResult<UserRecord> {
    let user = UserDoc {
        id: Uuid::now_v7().to_string(),
        username: new.username,
        username_key: new.username_key,
        display_name: new.display_name,
        email: new.email,
        password_hash: new.password_hash,
        avatar_file_id: None,
        disabled: false,
        event_seq: 0,
        created_at: DateTime::now(),
    };
    db.users
        .insert_one(&user)
        .session(&mut *s)
        .await
        .map_err(|error| {
            conflict(
                error,
                &[
                    (index::USERNAME_KEY, Conflict::UsernameTaken),
                    (index::EMAIL, Conflict::EmailTaken),
                ],
            )
        })?;
    user.to_record()
}

pub(super) async fn user_by_id(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<Option<UserRecord>> {
    let user = db
        .users
        .find_one(doc! { "_id": id.to_string() })
        .session(&mut *s)
        .await?;
    user.as_ref().map(UserDoc::to_record).transpose()
}

pub(super) async fn user_by_login(
    s: &mut ClientSession,
    db: &Db,
    login: &str,
) -> StoreResult<Option<UserRecord>> {
    let user = db
        .users
        .find_one(doc! { "$or": [{ "username_key": login }, { "email": login }] })
        .session(&mut *s)
        .await?;
    user.as_ref().map(UserDoc::to_record).transpose()
}

/// Finds the users with these username keys, in the order of `keys`, skipping unknown
/// keys.
pub(super) async fn users_by_keys(
    s: &mut ClientSession,
    db: &Db,
    keys: &[String],
) -> StoreResult<Vec<UserRecord>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let cursor = db
        .users
        .find(doc! { "username_key": { "$in": keys } })
        .session(&mut *s)
        .await?;
    let by_key: HashMap<String, UserDoc> = collect(cursor, s)
        .await?
        .into_iter()
        .map(|user| (user.username_key.clone(), user))
        .collect();
    keys.iter()
        .filter_map(|key| by_key.get(key))
        .map(UserDoc::to_record)
        .collect()
}

pub(super) async fn list_users(s: &mut ClientSession, db: &Db) -> StoreResult<Vec<UserRecord>> {
    let cursor = db
        .users
        .find(doc! {})
        .sort(doc! { "created_at": 1, "_id": 1 })
        .session(&mut *s)
        .await?;
    collect(cursor, s)
        .await?
        .iter()
        .map(UserDoc::to_record)
        .collect()
}

pub(super) async fn require_user(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<UserRecord> {
    user_by_id(s, db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("user {id} not found").into())
}

pub(super) async fn update_profile(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
    display_name: Option<String>,
    avatar_file_id: Option<Uuid>,
) -> StoreResult<(UserRecord, Fanout)> {
    let mut changes = doc! {};
    if let Some(name) = display_name {
        changes.insert("display_name", name);
    }
    if let Some(file_id) = avatar_file_id {
        changes.insert("avatar_file_id", file_id.to_string());
    }
    if !changes.is_empty() {
        db.users
            .update_one(doc! { "_id": id.to_string() }, doc! { "$set": changes })
            .session(&mut *s)
            .await?;
    }
    let user = require_user(s, db, id).await?;
    let data = serde_json::json!({
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_file_id.map(|_| format!("/api/users/{}/avatar", user.id)),
    });
    let fanout = emit(
        s,
        db,
        EventKind::UserUpdated,
        None,
        None,
        data,
        Audience::Users(&[id]),
    )
    .await?;
    Ok((user, fanout))
}

pub(super) async fn set_password(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
    password_hash: String,
) -> StoreResult<()> {
    db.users
        .update_one(
            doc! { "_id": id.to_string() },
            doc! { "$set": { "password_hash": password_hash } },
        )
        .session(&mut *s)
        .await?;
    end_sessions(s, db, id).await
}

pub(super) async fn set_disabled(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
    disabled: bool,
) -> StoreResult<()> {
    db.users
        .update_one(
            doc! { "_id": id.to_string() },
            doc! { "$set": { "disabled": disabled } },
        )
        .session(&mut *s)
        .await?;
    if disabled {
        end_sessions(s, db, id).await?;
    }
    Ok(())
}

async fn end_sessions(s: &mut ClientSession, db: &Db, user_id: Uuid) -> StoreResult<()> {
    db.sessions
        .delete_many(doc! { "user_id": user_id.to_string() })
        .session(&mut *s)
        .await?;
    Ok(())
}

pub(super) async fn create_session(
    s: &mut ClientSession,
    db: &Db,
    token_hash: &str,
    user_id: Uuid,
) -> StoreResult<()> {
    let now = DateTime::now();
    db.sessions
        .insert_one(SessionDoc {
            token_hash: token_hash.to_string(),
            user_id: user_id.to_string(),
            created_at: now,
            last_used_at: now,
        })
        .session(&mut *s)
        .await?;
    Ok(())
}

/// Finds the enabled account behind a session token's hash.
pub(super) async fn session_user(
    s: &mut ClientSession,
    db: &Db,
    token_hash: &str,
) -> StoreResult<Option<UserRecord>> {
    let session = db
        .sessions
        .find_one(doc! { "_id": token_hash })
        .session(&mut *s)
        .await?;
    let Some(session) = session else {
        return Ok(None);
    };
    let user = db
        .users
        .find_one(doc! { "_id": &session.user_id, "disabled": false })
        .session(&mut *s)
        .await?;
    user.as_ref().map(UserDoc::to_record).transpose()
}

pub(super) async fn delete_session(
    s: &mut ClientSession,
    db: &Db,
    token_hash: &str,
) -> StoreResult<()> {
    db.sessions
        .delete_one(doc! { "_id": token_hash })
        .session(&mut *s)
        .await?;
    Ok(())
}
