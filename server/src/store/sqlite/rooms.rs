//! Rooms, sub-rooms, direct rooms, membership, bans and invites.

use roomler_shared::model::{Member, Role, RoomKind, UserRef};
use roomler_shared::ws::{DeletedEvent, EventKind, MemberEvent};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use super::events::{Audience, emit};
use super::{
    from_millis, now_millis, optional_uuid_column, to_millis, unique_violation, uuid_column,
};
use crate::store::{
    BanRecord, Conflict, Departure, Fanout, InviteRecord, Membership, NewDirect, NewRoom,
    RoomChanges, RoomRecord, StoreError, StoreResult,
};

const ROOM_COLUMNS: &str = "r.id, r.name, r.path, r.kind, r.parent_id, r.topic, r.owner_id, \
     r.password_hash, (SELECT COUNT(*) FROM memberships m WHERE m.room_id = r.id), r.last_seq, \
     r.created_at";

/// The room and every room below it, the room itself first.
const SUBTREE: &str = "WITH RECURSIVE subtree(id, depth) AS (
        SELECT id, 0 FROM rooms WHERE id = ?1
        UNION ALL
        SELECT r.id, s.depth + 1 FROM rooms r JOIN subtree s ON r.parent_id = s.id
    )";

pub(crate) fn create_room(tx: &Transaction, new: &NewRoom) -> StoreResult<(RoomRecord, Fanout)> {
    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO rooms (id, name, path, kind, parent_id, topic, owner_id, password_hash,
                            created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            id.to_string(),
            new.name,
            new.path,
            new.kind.as_str(),
            new.parent_id.map(|id| id.to_string()),
            new.topic,
            new.creator_id.to_string(),
            new.password_hash,
            now_millis(),
        ],
    )
    .map_err(|error| unique_violation(error, &[("rooms.path", Conflict::RoomPathTaken)]))?;
    insert_membership(tx, id, new.creator_id, Role::Owner)?;

    let room = require_room(tx, id)?;
    let data = serde_json::to_value(room.to_model(None))?;
    let audience = room_audience(tx, &room)?;
    let fanout = emit(
        tx,
        EventKind::RoomCreated,
        Some(id),
        None,
        data,
        Audience::Users(&audience),
    )?;
    Ok((room, fanout))
}

/// Who hears about a room's creation, changes and deletion: its members and, for a
/// public sub-room, the members of its parent, who may see and join it.
fn room_audience(conn: &Connection, room: &RoomRecord) -> StoreResult<Vec<Uuid>> {
    let mut audience = super::events::room_member_ids(conn, room.id)?;
    if let (RoomKind::Public, Some(parent_id)) = (room.kind, room.parent_id) {
        audience.extend(super::events::room_member_ids(conn, parent_id)?);
    }
    Ok(audience)
}

pub(crate) fn create_direct(
    tx: &Transaction,
    new: &NewDirect,
) -> StoreResult<(RoomRecord, Option<Fanout>)> {
    // Two people share one direct room; groups may have several.
    let direct_key = (new.member_ids.len() == 2).then(|| {
        let mut ids: Vec<String> = new.member_ids.iter().map(Uuid::to_string).collect();
        ids.sort();
        ids.join(",")
    });
    if let Some(key) = &direct_key {
        let existing: Option<String> = tx
            .query_row("SELECT id FROM rooms WHERE direct_key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?;
        if let Some(id) = existing {
            return Ok((require_room(tx, super::parse_uuid(&id)?)?, None));
        }
    }

    let id = Uuid::now_v7();
    tx.execute(
        "INSERT INTO rooms (id, name, path, kind, owner_id, direct_key, created_at)
         VALUES (?1, '', ?2, 'direct', NULL, ?3, ?4)",
        params![
            id.to_string(),
            format!("@direct-{id}"),
            direct_key,
            now_millis()
        ],
    )?;
    for member in &new.member_ids {
        insert_membership(tx, id, *member, Role::Member)?;
    }
    let room = require_room(tx, id)?;
    let data = serde_json::to_value(room.to_model(None))?;
    let fanout = emit(
        tx,
        EventKind::RoomCreated,
        Some(id),
        None,
        data,
        Audience::Room(id),
    )?;
    Ok((room, Some(fanout)))
}

pub(crate) fn room_by_id(conn: &Connection, id: Uuid) -> StoreResult<Option<RoomRecord>> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.id = ?1");
    Ok(conn
        .query_row(&sql, [id.to_string()], room_row)
        .optional()?)
}

pub(crate) fn room_by_path(conn: &Connection, path: &str) -> StoreResult<Option<RoomRecord>> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.path = ?1");
    Ok(conn.query_row(&sql, [path], room_row).optional()?)
}

pub(crate) fn rooms_of_user(
    conn: &Connection,
    user_id: Uuid,
) -> StoreResult<Vec<(RoomRecord, Role)>> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS}, ms.role FROM rooms r
         JOIN memberships ms ON ms.room_id = r.id AND ms.user_id = ?1
         ORDER BY r.path"
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map([user_id.to_string()], |row| {
        let role: String = row.get(11)?;
        Ok((room_row(row)?, Role::parse(&role).unwrap_or(Role::Member)))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn all_rooms(conn: &Connection) -> StoreResult<Vec<RoomRecord>> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r ORDER BY r.path");
    let mut statement = conn.prepare(&sql)?;
    let rooms = statement
        .query_map([], room_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rooms)
}

pub(crate) fn directory(
    conn: &Connection,
    query: &str,
    limit: u32,
) -> StoreResult<Vec<RoomRecord>> {
    let sql = format!(
        "WITH RECURSIVE listed(id) AS (
             SELECT id FROM rooms WHERE parent_id IS NULL AND kind = 'public'
             UNION ALL
             SELECT r.id FROM rooms r JOIN listed l ON r.parent_id = l.id WHERE r.kind = 'public'
         )
         SELECT {ROOM_COLUMNS} FROM rooms r
         WHERE r.id IN (SELECT id FROM listed) AND r.path LIKE ?1 ESCAPE '\\'
         ORDER BY r.path LIMIT ?2"
    );
    let pattern = format!("%{}%", escape_like(&query.to_lowercase()));
    let mut statement = conn.prepare(&sql)?;
    let rooms = statement
        .query_map(params![pattern, limit], room_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rooms)
}

pub(crate) fn child_rooms(conn: &Connection, room_id: Uuid) -> StoreResult<Vec<RoomRecord>> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms r WHERE r.parent_id = ?1 ORDER BY r.path");
    let mut statement = conn.prepare(&sql)?;
    let rooms = statement
        .query_map([room_id.to_string()], room_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rooms)
}

pub(crate) fn membership(
    conn: &Connection,
    room_id: Uuid,
    user_id: Uuid,
) -> StoreResult<Option<Membership>> {
    let found = conn
        .query_row(
            "SELECT role, joined_at FROM memberships WHERE room_id = ?1 AND user_id = ?2",
            params![room_id.to_string(), user_id.to_string()],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
        )
        .optional()?;
    Ok(found.map(|(role, joined_at)| Membership {
        room_id,
        user_id,
        role: Role::parse(&role).unwrap_or(Role::Member),
        joined_at: from_millis(joined_at),
    }))
}

pub(crate) fn members(conn: &Connection, room_id: Uuid) -> StoreResult<Vec<Member>> {
    let mut statement = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, m.role, m.joined_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = ?1 ORDER BY u.username_key",
    )?;
    let members = statement
        .query_map([room_id.to_string()], |row| {
            let role: String = row.get(3)?;
            Ok(Member {
                user: UserRef {
                    id: uuid_column(row, 0)?,
                    username: row.get(1)?,
                    display_name: row.get(2)?,
                },
                role: Role::parse(&role).unwrap_or(Role::Member),
                joined_at: from_millis(row.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(members)
}

pub(crate) fn is_banned(conn: &Connection, room_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
    let banned = conn
        .query_row(
            "SELECT 1 FROM bans WHERE room_id = ?1 AND user_id = ?2",
            params![room_id.to_string(), user_id.to_string()],
            |_| Ok(()),
        )
        .optional()?;
    Ok(banned.is_some())
}

pub(crate) fn unban(tx: &Transaction, room_id: Uuid, user_id: Uuid) -> StoreResult<bool> {
    let removed = tx.execute(
        "DELETE FROM bans WHERE room_id = ?1 AND user_id = ?2",
        params![room_id.to_string(), user_id.to_string()],
    )?;
    Ok(removed > 0)
}

pub(crate) fn bans(conn: &Connection, room_id: Uuid) -> StoreResult<Vec<BanRecord>> {
    let mut statement = conn.prepare(
        "SELECT user_id, banned_by, banned_at FROM bans WHERE room_id = ?1
         ORDER BY banned_at DESC, user_id",
    )?;
    let bans = statement
        .query_map([room_id.to_string()], |row| {
            Ok(BanRecord {
                user_id: uuid_column(row, 0)?,
                banned_by: uuid_column(row, 1)?,
                banned_at: from_millis(row.get(2)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(bans)
}

pub(crate) fn add_member(
    tx: &Transaction,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> StoreResult<Fanout> {
    insert_membership(tx, room_id, user_id, role)?;
    member_event(tx, EventKind::MemberJoined, room_id, user_id, &[])
}

pub(crate) fn remove_member(
    tx: &Transaction,
    room_id: Uuid,
    user_id: Uuid,
    departure: Departure,
) -> StoreResult<Vec<Fanout>> {
    // Deepest rooms first, so that each sub-room's event precedes its parent's.
    let sql = format!(
        "{SUBTREE} SELECT s.id FROM subtree s
         JOIN memberships m ON m.room_id = s.id AND m.user_id = ?2
         ORDER BY s.depth DESC"
    );
    let mut statement = tx.prepare(&sql)?;
    let rooms = statement
        .query_map(params![room_id.to_string(), user_id.to_string()], |row| {
            uuid_column(row, 0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    drop(statement);

    let kind = match departure {
        Departure::Left => EventKind::MemberLeft,
        Departure::Kicked { .. } => EventKind::MemberKicked,
        Departure::Banned { .. } => EventKind::MemberBanned,
    };
    if let Departure::Banned { by } = departure {
        tx.execute(
            "INSERT OR REPLACE INTO bans (room_id, user_id, banned_by, banned_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                room_id.to_string(),
                user_id.to_string(),
                by.to_string(),
                now_millis()
            ],
        )?;
    }

    let mut fanouts = Vec::with_capacity(rooms.len());
    for room in rooms {
        tx.execute(
            "DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2",
            params![room.to_string(), user_id.to_string()],
        )?;
        fanouts.push(member_event(tx, kind, room, user_id, &[user_id])?);
    }
    Ok(fanouts)
}

pub(crate) fn set_role(
    tx: &Transaction,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> StoreResult<Fanout> {
    tx.execute(
        "UPDATE memberships SET role = ?1 WHERE room_id = ?2 AND user_id = ?3",
        params![role.as_str(), room_id.to_string(), user_id.to_string()],
    )?;
    member_event(tx, EventKind::MemberRoleChanged, room_id, user_id, &[])
}

pub(crate) fn transfer_ownership(
    tx: &Transaction,
    room_id: Uuid,
    from: Uuid,
    to: Uuid,
) -> StoreResult<Vec<Fanout>> {
    tx.execute(
        "UPDATE rooms SET owner_id = ?1 WHERE id = ?2",
        params![to.to_string(), room_id.to_string()],
    )?;
    let promoted = set_role(tx, room_id, to, Role::Owner)?;
    let demoted = set_role(tx, room_id, from, Role::Moderator)?;
    let room = require_room(tx, room_id)?;
    let data = serde_json::to_value(room.to_model(None))?;
    let updated = emit(
        tx,
        EventKind::RoomUpdated,
        Some(room_id),
        None,
        data,
        Audience::Room(room_id),
    )?;
    Ok(vec![promoted, demoted, updated])
}

pub(crate) fn update_room(
    tx: &Transaction,
    room_id: Uuid,
    changes: RoomChanges,
) -> StoreResult<(RoomRecord, Vec<Fanout>)> {
    let before = require_room(tx, room_id)?;
    let mut renamed = Vec::new();

    if let Some(name) = &changes.name {
        let new_path = match before.path.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.{name}"),
            None => name.clone(),
        };
        let conflict = |error| unique_violation(error, &[("rooms.path", Conflict::RoomPathTaken)]);
        tx.execute(
            "UPDATE rooms SET name = ?1, path = ?2 WHERE id = ?3",
            params![name, new_path, room_id.to_string()],
        )
        .map_err(conflict)?;
        // Descendants keep their own segments under the new prefix.
        let sql = format!(
            "{SUBTREE} UPDATE rooms SET path = ?2 || substr(path, ?3)
             WHERE id IN (SELECT id FROM subtree WHERE depth > 0)"
        );
        tx.execute(
            &sql,
            params![
                room_id.to_string(),
                new_path,
                before.path.chars().count() as i64 + 1
            ],
        )
        .map_err(conflict)?;
        renamed = descendant_ids(tx, room_id)?;
    }
    if let Some(topic) = &changes.topic {
        tx.execute(
            "UPDATE rooms SET topic = ?1 WHERE id = ?2",
            params![topic, room_id.to_string()],
        )?;
    }
    if let Some(password_hash) = &changes.password_hash {
        tx.execute(
            "UPDATE rooms SET password_hash = ?1 WHERE id = ?2",
            params![password_hash, room_id.to_string()],
        )?;
    }

    let room = require_room(tx, room_id)?;
    let mut fanouts = vec![room_updated(tx, &room)?];
    for child in renamed {
        let child = require_room(tx, child)?;
        fanouts.push(room_updated(tx, &child)?);
    }
    Ok((room, fanouts))
}

pub(crate) fn delete_room(tx: &Transaction, room_id: Uuid) -> StoreResult<Vec<Fanout>> {
    let mut rooms = descendant_ids(tx, room_id)?;
    rooms.push(room_id);

    let mut fanouts = Vec::with_capacity(rooms.len());
    for room in &rooms {
        let room_text = room.to_string();
        tx.execute(
            "DELETE FROM messages_fts WHERE rowid IN (SELECT rowid FROM messages WHERE room_id = ?1)",
            [&room_text],
        )?;
        // The events of a deleted room would replay content that no longer exists.
        tx.execute("DELETE FROM events WHERE room_id = ?1", [&room_text])?;
        let members = room_audience(tx, &require_room(tx, *room)?)?;
        let data = serde_json::to_value(DeletedEvent { id: *room })?;
        fanouts.push(emit(
            tx,
            EventKind::RoomDeleted,
            Some(*room),
            None,
            data,
            Audience::Users(&members),
        )?);
    }
    tx.execute("DELETE FROM rooms WHERE id = ?1", [room_id.to_string()])?;
    Ok(fanouts)
}

pub(crate) fn create_invite(tx: &Transaction, invite: &InviteRecord) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO invites (code_hash, room_id, created_by, expires_at, single_use, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            invite.code_hash,
            invite.room_id.to_string(),
            invite.created_by.to_string(),
            to_millis(invite.expires_at),
            invite.single_use,
            now_millis(),
        ],
    )?;
    Ok(())
}

pub(crate) fn redeem_invite(
    tx: &Transaction,
    code_hash: &str,
) -> StoreResult<Option<InviteRecord>> {
    let found = find_invite(tx, code_hash)?;
    if found.is_some() {
        tx.execute(
            "UPDATE invites SET uses = uses + 1 WHERE code_hash = ?1",
            [code_hash],
        )?;
    }
    Ok(found)
}

pub(crate) fn find_invite(conn: &Connection, code_hash: &str) -> StoreResult<Option<InviteRecord>> {
    let found = conn
        .query_row(
            "SELECT room_id, created_by, expires_at, single_use FROM invites
             WHERE code_hash = ?1 AND expires_at > ?2 AND (single_use = 0 OR uses = 0)",
            params![code_hash, now_millis()],
            |row| {
                Ok(InviteRecord {
                    code_hash: code_hash.to_string(),
                    room_id: uuid_column(row, 0)?,
                    created_by: uuid_column(row, 1)?,
                    expires_at: from_millis(row.get(2)?),
                    single_use: row.get(3)?,
                })
            },
        )
        .optional()?;
    Ok(found)
}

fn insert_membership(
    tx: &Transaction,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            room_id.to_string(),
            user_id.to_string(),
            role.as_str(),
            now_millis()
        ],
    )
    .map_err(|error| unique_violation(error, &[("memberships.", Conflict::AlreadyMember)]))?;
    Ok(())
}

fn member_event(
    tx: &Transaction,
    kind: EventKind,
    room_id: Uuid,
    user_id: Uuid,
    also: &[Uuid],
) -> StoreResult<Fanout> {
    let member = members(tx, room_id)?
        .into_iter()
        .find(|member| member.user.id == user_id);
    let data = serde_json::to_value(MemberEvent { user_id, member })?;
    emit(
        tx,
        kind,
        Some(room_id),
        None,
        data,
        Audience::RoomAnd(room_id, also),
    )
}

fn room_updated(tx: &Transaction, room: &RoomRecord) -> StoreResult<Fanout> {
    let data = serde_json::to_value(room.to_model(None))?;
    let audience = room_audience(tx, room)?;
    emit(
        tx,
        EventKind::RoomUpdated,
        Some(room.id),
        None,
        data,
        Audience::Users(&audience),
    )
}

fn descendant_ids(conn: &Connection, room_id: Uuid) -> StoreResult<Vec<Uuid>> {
    let sql = format!("{SUBTREE} SELECT id FROM subtree WHERE depth > 0 ORDER BY depth DESC");
    let mut statement = conn.prepare(&sql)?;
    let ids = statement
        .query_map([room_id.to_string()], |row| uuid_column(row, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids)
}

pub(crate) fn require_room(conn: &Connection, id: Uuid) -> StoreResult<RoomRecord> {
    room_by_id(conn, id)?.ok_or_else(|| StoreError::Other(anyhow::anyhow!("room {id} not found")))
}

fn room_row(row: &Row) -> rusqlite::Result<RoomRecord> {
    let kind: String = row.get(3)?;
    Ok(RoomRecord {
        id: uuid_column(row, 0)?,
        name: row.get(1)?,
        path: row.get(2)?,
        kind: RoomKind::parse(&kind).unwrap_or(RoomKind::Private),
        parent_id: optional_uuid_column(row, 4)?,
        topic: row.get(5)?,
        owner_id: optional_uuid_column(row, 6)?,
        password_hash: row.get(7)?,
        member_count: row.get::<_, i64>(8)? as u32,
        last_seq: row.get(9)?,
        created_at: from_millis(row.get(10)?),
    })
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
