//! Users and sessions.

use roomler_shared::ws::EventKind;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use super::events::{Audience, emit};
use super::{from_millis, now_millis, optional_uuid_column, unique_violation, uuid_column};
use crate::store::{Conflict, Fanout, NewUser, StoreResult, UserRecord};

const USER_COLUMNS: &str = "id, username, username_key, display_name, email, password_hash, \
                            avatar_file_id, disabled, created_at";

pub(crate) fn create_user(tx: &Transaction, new: &NewUser) -> StoreResult<UserRecord> {
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO users (id, username, username_key, display_name, email, password_hash,
                            created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id.to_string(),
            new.username,
            new.username_key,
            new.display_name,
            new.email,
            new.password_hash,
            now_millis(),
        ],
    )
    .map_err(|error| {
        unique_violation(
            error,
            &[
                ("users.username_key", Conflict::UsernameTaken),
                ("users.email", Conflict::EmailTaken),
            ],
        )
    })?;
    user_by_id(tx, id)?.ok_or_else(|| anyhow::anyhow!("the new user {id} vanished").into())
}

pub(crate) fn user_by_id(conn: &Connection, id: Uuid) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    Ok(conn
        .query_row(&sql, [id.to_string()], user_row)
        .optional()?)
}

pub(crate) fn user_by_login(conn: &Connection, login: &str) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = ?1 OR email = ?1");
    Ok(conn.query_row(&sql, [login], user_row).optional()?)
}

pub(crate) fn users_by_keys(conn: &Connection, keys: &[String]) -> StoreResult<Vec<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username_key = ?1");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut users = Vec::new();
    for key in keys {
        if let Some(user) = statement.query_row([key], user_row).optional()? {
            users.push(user);
        }
    }
    Ok(users)
}

pub(crate) fn list_users(conn: &Connection) -> StoreResult<Vec<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at");
    let mut statement = conn.prepare(&sql)?;
    let users = statement
        .query_map([], user_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(users)
}

pub(crate) fn update_profile(
    tx: &Transaction,
    id: Uuid,
    display_name: Option<String>,
    avatar_file_id: Option<Uuid>,
) -> StoreResult<(UserRecord, Fanout)> {
    if let Some(name) = display_name {
        tx.execute(
            "UPDATE users SET display_name = ?1 WHERE id = ?2",
            params![name, id.to_string()],
        )?;
    }
    if let Some(file_id) = avatar_file_id {
        tx.execute(
            "UPDATE users SET avatar_file_id = ?1 WHERE id = ?2",
            params![file_id.to_string(), id.to_string()],
        )?;
    }
    let user = user_by_id(tx, id)?.ok_or_else(|| anyhow::anyhow!("user {id} not found"))?;
    let data = serde_json::json!({
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_file_id.map(|_| format!("/api/users/{}/avatar", user.id)),
    });
    let fanout = emit(
        tx,
        EventKind::UserUpdated,
        None,
        None,
        data,
        Audience::Users(&[id]),
    )?;
    Ok((user, fanout))
}

pub(crate) fn set_password(tx: &Transaction, id: Uuid, password_hash: &str) -> StoreResult<()> {
    tx.execute(
        "UPDATE users SET password_hash = ?1 WHERE id = ?2",
        params![password_hash, id.to_string()],
    )?;
    tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id.to_string()])?;
    Ok(())
}

pub(crate) fn set_disabled(tx: &Transaction, id: Uuid, disabled: bool) -> StoreResult<()> {
    tx.execute(
        "UPDATE users SET disabled = ?1 WHERE id = ?2",
        params![disabled, id.to_string()],
    )?;
    if disabled {
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id.to_string()])?;
    }
    Ok(())
}

pub(crate) fn create_session(tx: &Transaction, token_hash: &str, user_id: Uuid) -> StoreResult<()> {
    let now = now_millis();
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_used_at)
         VALUES (?1, ?2, ?3, ?3)",
        params![token_hash, user_id.to_string(), now],
    )?;
    Ok(())
}

pub(crate) fn session_user(conn: &Connection, token_hash: &str) -> StoreResult<Option<UserRecord>> {
    let columns = USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns} FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND u.disabled = 0"
    );
    Ok(conn.query_row(&sql, [token_hash], user_row).optional()?)
}

pub(crate) fn delete_session(tx: &Transaction, token_hash: &str) -> StoreResult<()> {
    tx.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

fn user_row(row: &Row) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: uuid_column(row, 0)?,
        username: row.get(1)?,
        username_key: row.get(2)?,
        display_name: row.get(3)?,
        email: row.get(4)?,
        password_hash: row.get(5)?,
        avatar_file_id: optional_uuid_column(row, 6)?,
        disabled: row.get(7)?,
        created_at: from_millis(row.get(8)?),
    })
}
