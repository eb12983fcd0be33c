//! Rooms, sub-rooms, direct rooms, membership, bans and invites.

use std::collections::{HashMap, HashSet};

use mongodb::ClientSession;
use mongodb::bson::{Bson, DateTime, Document, doc};
use roomler_shared::model::{Member, Role, RoomKind, UserRef};
use roomler_shared::ws::{DeletedEvent, EventKind, MemberEvent};
use uuid::Uuid;

use super::documents::{
    BanDoc, InviteDoc, MembershipDoc, RoomDoc, UserDoc, pair_id, parse_id, to_date, to_time,
};
use super::events::{Audience, delete_room_events, emit, integer, room_member_ids};
use super::{Db, collect, conflict, index, limit_of};
use crate::store::{
    BanRecord, Conflict, Departure, Fanout, InviteRecord, Membership, NewDirect, NewRoom,
    RoomChanges, RoomRecord, StoreResult,
};

pub(super) async fn create_room(
    s: &mut ClientSession,
    db: &Db,
    new: NewRoom,
) -> StoreResult<(RoomRecord, Fanout)> {
    if let Some(parent_id) = new.parent_id {
        require_room(s, db, parent_id).await?;
    }
    let id = Uuid::now_v7();
    let room = RoomDoc {
        id: id.to_string(),
        name: new.name,
        path: new.path,
        kind: new.kind.as_str().to_string(),
        parent_id: new.parent_id.map(|id| id.to_string()),
        topic: new.topic,
        owner_id: Some(new.creator_id.to_string()),
        password_hash: new.password_hash,
        direct_key: None,
        last_seq: 0,
        created_at: DateTime::now(),
    };
    db.rooms
        .insert_one(&room)
        .session(&mut *s)
        .await
        .map_err(|error| conflict(error, &[(index::PATH, Conflict::RoomPathTaken)]))?;
    insert_membership(s, db, id, new.creator_id, Role::Owner).await?;

    let room = require_room(s, db, id).await?;
    let data = serde_json::to_value(room.to_model(None))?;
    let audience = room_audience(s, db, &room).await?;
    let fanout = emit(
        s,
        db,
        EventKind::RoomCreated,
        Some(id),
        None,
        data,
        Audience::Users(&audience),
    )
    .await?;
    Ok((room, fanout))
}

/// Lists the users who hear about a room's creation, changes and deletion: its
/// members and, for a public sub-room, the members of its parent, who may see and
/// join it.
async fn room_audience(
    s: &mut ClientSession,
    db: &Db,
    room: &RoomRecord,
) -> StoreResult<Vec<Uuid>> {
    let mut audience = room_member_ids(s, db, room.id).await?;
    if let (RoomKind::Public, Some(parent_id)) = (room.kind, room.parent_id) {
        audience.extend(room_member_ids(s, db, parent_id).await?);
    }
    Ok(audience)
}

/// Builds the key that makes a two-person direct room unique. Groups have none,
/// because they may have several rooms.
pub(super) fn direct_key(member_ids: &[Uuid]) -> Option<String> {
    (member_ids.len() == 2).then(|| {
        let mut ids: Vec<String> = member_ids.iter().map(Uuid::to_string).collect();
        ids.sort();
        ids.join(",")
    })
}

pub(super) async fn room_by_direct_key(
    s: &mut ClientSession,
    db: &Db,
    key: &str,
) -> StoreResult<Option<RoomRecord>> {
    let room = db
        .rooms
        .find_one(doc! { "direct_key": key })
        .session(&mut *s)
        .await?;
    one_record(s, db, room).await
}

pub(super) async fn create_direct(
    s: &mut ClientSession,
    db: &Db,
    new: NewDirect,
) -> StoreResult<(RoomRecord, Option<Fanout>)> {
    let key = direct_key(&new.member_ids);
    if let Some(key) = &key
        && let Some(existing) = room_by_direct_key(s, db, key).await?
    {
        return Ok((existing, None));
    }

    let id = Uuid::now_v7();
    let room = RoomDoc {
        id: id.to_string(),
        name: String::new(),
        path: format!("@direct-{id}"),
        kind: RoomKind::Direct.as_str().to_string(),
        parent_id: None,
        topic: String::new(),
        owner_id: None,
        password_hash: None,
        direct_key: key,
        last_seq: 0,
        created_at: DateTime::now(),
    };
    db.rooms.insert_one(&room).session(&mut *s).await?;
    for member in &new.member_ids {
        insert_membership(s, db, id, *member, Role::Member).await?;
    }
    let room = require_room(s, db, id).await?;
    let data = serde_json::to_value(room.to_model(None))?;
    let fanout = emit(
        s,
        db,
        EventKind::RoomCreated,
        Some(id),
        None,
        data,
        Audience::Room(id),
    )
    .await?;
    Ok((room, Some(fanout)))
}

pub(super) async fn room_by_id(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<Option<RoomRecord>> {
    let room = db
        .rooms
        .find_one(doc! { "_id": id.to_string() })
        .session(&mut *s)
        .await?;
    one_record(s, db, room).await
}

pub(super) async fn room_by_path(
    s: &mut ClientSession,
    db: &Db,
    path: &str,
) -> StoreResult<Option<RoomRecord>> {
    let room = db
        .rooms
        .find_one(doc! { "path": path })
        .session(&mut *s)
        .await?;
    one_record(s, db, room).await
}

pub(super) async fn require_room(
    s: &mut ClientSession,
    db: &Db,
    id: Uuid,
) -> StoreResult<RoomRecord> {
    room_by_id(s, db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("room {id} not found").into())
}

pub(super) async fn rooms_of_user(
    s: &mut ClientSession,
    db: &Db,
    user_id: Uuid,
) -> StoreResult<Vec<(RoomRecord, Role)>> {
    let cursor = db
        .memberships
        .find(doc! { "user_id": user_id.to_string() })
        .session(&mut *s)
        .await?;
    let mut roles = HashMap::new();
    for membership in collect(cursor, s).await? {
        roles.insert(membership.room_id.clone(), membership.role()?);
    }
    let ids: Vec<&String> = roles.keys().collect();
    let rooms = find_rooms(s, db, doc! { "_id": { "$in": ids } }).await?;
    let records = records(s, db, rooms).await?;
    records
        .into_iter()
        .map(|room| {
            let role = roles
                .get(&room.id.to_string())
                .copied()
                .unwrap_or(Role::Member);
            Ok((room, role))
        })
        .collect()
}

pub(super) async fn all_rooms(s: &mut ClientSession, db: &Db) -> StoreResult<Vec<RoomRecord>> {
    let rooms = find_rooms(s, db, doc! {}).await?;
    records(s, db, rooms).await
}

/// Public rooms whose ancestors are all public, matching `query` in their path.
///
/// The tree is walked here from the public rooms, which are read whole. `LIKE` in the
/// SQLite backend ignores case for ASCII letters only, and so does this match.
pub(super) async fn directory(
    s: &mut ClientSession,
    db: &Db,
    query: &str,
    limit: u32,
) -> StoreResult<Vec<RoomRecord>> {
    let Some(limit) = limit_of(limit) else {
        return Ok(Vec::new());
    };
    let public = find_rooms(s, db, doc! { "kind": RoomKind::Public.as_str() }).await?;
    let mut children: HashMap<Option<&str>, Vec<&RoomDoc>> = HashMap::new();
    for room in &public {
        children
            .entry(room.parent_id.as_deref())
            .or_default()
            .push(room);
    }
    let mut listed = Vec::new();
    let mut frontier: Vec<&RoomDoc> = children.get(&None).cloned().unwrap_or_default();
    while let Some(room) = frontier.pop() {
        listed.push(room);
        if let Some(below) = children.get(&Some(room.id.as_str())) {
            frontier.extend(below.iter().copied());
        }
    }

    let needle = query.to_lowercase();
    let mut matching: Vec<RoomDoc> = listed
        .into_iter()
        .filter(|room| room.path.to_ascii_lowercase().contains(&needle))
        .cloned()
        .collect();
    matching.sort_by(|a, b| a.path.cmp(&b.path));
    matching.truncate(limit as usize);
    records(s, db, matching).await
}

pub(super) async fn child_rooms(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<Vec<RoomRecord>> {
    let rooms = find_rooms(s, db, doc! { "parent_id": room_id.to_string() }).await?;
    records(s, db, rooms).await
}

pub(super) async fn membership(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
) -> StoreResult<Option<Membership>> {
    let membership = db
        .memberships
        .find_one(doc! { "_id": pair_id(room_id, user_id) })
        .session(&mut *s)
        .await?;
    membership
        .as_ref()
        .map(MembershipDoc::to_record)
        .transpose()
}

/// Lists the room's members, ordered by username key.
pub(super) async fn members(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<Vec<Member>> {
    let cursor = db
        .memberships
        .find(doc! { "room_id": room_id.to_string() })
        .session(&mut *s)
        .await?;
    let memberships = collect(cursor, s).await?;
    let user_ids: Vec<&String> = memberships.iter().map(|m| &m.user_id).collect();
    let cursor = db
        .users
        .find(doc! { "_id": { "$in": user_ids } })
        .session(&mut *s)
        .await?;
    let users: HashMap<String, UserDoc> = collect(cursor, s)
        .await?
        .into_iter()
        .map(|user| (user.id.clone(), user))
        .collect();

    let mut members = Vec::with_capacity(memberships.len());
    for membership in &memberships {
        // A membership of an unknown user is skipped, as the SQLite join does.
        let Some(user) = users.get(&membership.user_id) else {
            continue;
        };
        members.push((user.username_key.clone(), to_member(user, membership)?));
    }
    members.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(members.into_iter().map(|(_, member)| member).collect())
}

fn to_member(user: &UserDoc, membership: &MembershipDoc) -> StoreResult<Member> {
    let record = membership.to_record()?;
    Ok(Member {
        user: UserRef {
            id: parse_id(&user.id)?,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
        },
        role: record.role,
        joined_at: record.joined_at,
    })
}

/// Finds one member of the room, or `None` when the user is not a member.
async fn member(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
) -> StoreResult<Option<Member>> {
    let membership = db
        .memberships
        .find_one(doc! { "_id": pair_id(room_id, user_id) })
        .session(&mut *s)
        .await?;
    let Some(membership) = membership else {
        return Ok(None);
    };
    let user = db
        .users
        .find_one(doc! { "_id": user_id.to_string() })
        .session(&mut *s)
        .await?;
    user.map(|user| to_member(&user, &membership)).transpose()
}

pub(super) async fn is_banned(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
) -> StoreResult<bool> {
    let ban = db
        .bans
        .find_one(doc! { "_id": pair_id(room_id, user_id) })
        .session(&mut *s)
        .await?;
    Ok(ban.is_some())
}

pub(super) async fn unban(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
) -> StoreResult<bool> {
    let removed = db
        .bans
        .delete_one(doc! { "_id": pair_id(room_id, user_id) })
        .session(&mut *s)
        .await?;
    Ok(removed.deleted_count > 0)
}

/// Lists the room's bans, newest first.
pub(super) async fn bans(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<Vec<BanRecord>> {
    let cursor = db
        .bans
        .find(doc! { "room_id": room_id.to_string() })
        .sort(doc! { "banned_at": -1, "user_id": 1 })
        .session(&mut *s)
        .await?;
    collect(cursor, s)
        .await?
        .into_iter()
        .map(|ban| {
            Ok(BanRecord {
                user_id: parse_id(&ban.user_id)?,
                banned_by: parse_id(&ban.banned_by)?,
                banned_at: to_time(ban.banned_at),
            })
        })
        .collect()
}

pub(super) async fn add_member(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> StoreResult<Fanout> {
    require_room(s, db, room_id).await?;
    super::accounts::require_user(s, db, user_id).await?;
    insert_membership(s, db, room_id, user_id, role).await?;
    member_event(s, db, EventKind::MemberJoined, room_id, user_id, &[]).await
}

pub(super) async fn remove_member(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
    departure: Departure,
) -> StoreResult<Vec<Fanout>> {
    // Deepest rooms first, so that each sub-room's event precedes its parent's.
    let mut rooms = Vec::new();
    for (room, _depth) in subtree(s, db, room_id).await?.into_iter().rev() {
        if membership(s, db, room, user_id).await?.is_some() {
            rooms.push(room);
        }
    }

    let kind = match departure {
        Departure::Left => EventKind::MemberLeft,
        Departure::Kicked { .. } => EventKind::MemberKicked,
        Departure::Banned { .. } => EventKind::MemberBanned,
    };
    if let Departure::Banned { by } = departure {
        let ban = BanDoc {
            id: pair_id(room_id, user_id),
            room_id: room_id.to_string(),
            user_id: user_id.to_string(),
            banned_by: by.to_string(),
            banned_at: DateTime::now(),
        };
        db.bans
            .replace_one(doc! { "_id": &ban.id }, &ban)
            .upsert(true)
            .session(&mut *s)
            .await?;
    }

    let mut fanouts = Vec::with_capacity(rooms.len());
    for room in rooms {
        db.memberships
            .delete_one(doc! { "_id": pair_id(room, user_id) })
            .session(&mut *s)
            .await?;
        fanouts.push(member_event(s, db, kind, room, user_id, &[user_id]).await?);
    }
    Ok(fanouts)
}

pub(super) async fn set_role(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> StoreResult<Fanout> {
    db.memberships
        .update_one(
            doc! { "_id": pair_id(room_id, user_id) },
            doc! { "$set": { "role": role.as_str() } },
        )
        .session(&mut *s)
        .await?;
    member_event(s, db, EventKind::MemberRoleChanged, room_id, user_id, &[]).await
}

pub(super) async fn transfer_ownership(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    from: Uuid,
    to: Uuid,
) -> StoreResult<Vec<Fanout>> {
    db.rooms
        .update_one(
            doc! { "_id": room_id.to_string() },
            doc! { "$set": { "owner_id": to.to_string() } },
        )
        .session(&mut *s)
        .await?;
    let promoted = set_role(s, db, room_id, to, Role::Owner).await?;
    let demoted = set_role(s, db, room_id, from, Role::Moderator).await?;
    let room = require_room(s, db, room_id).await?;
    let data = serde_json::to_value(room.to_model(None))?;
    let updated = emit(
        s,
        db,
        EventKind::RoomUpdated,
        Some(room_id),
        None,
        data,
        Audience::Room(room_id),
    )
    .await?;
    Ok(vec![promoted, demoted, updated])
}

pub(super) async fn update_room(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    changes: RoomChanges,
) -> StoreResult<(RoomRecord, Vec<Fanout>)> {
    let before = require_room(s, db, room_id).await?;
    let mut renamed = Vec::new();

    if let Some(name) = &changes.name {
        let new_path = match before.path.rsplit_once('.') {
            Some((parent, _)) => format!("{parent}.{name}"),
            None => name.clone(),
        };
        set_room_fields(s, db, room_id, doc! { "name": name, "path": &new_path }).await?;
        // Descendants keep their own segments under the new prefix.
        let prefix_chars = before.path.chars().count();
        renamed = descendant_ids(s, db, room_id).await?;
        for child in &renamed {
            let path = require_room(s, db, *child).await?.path;
            let rest: String = path.chars().skip(prefix_chars).collect();
            set_room_fields(s, db, *child, doc! { "path": format!("{new_path}{rest}") }).await?;
        }
    }
    if let Some(topic) = &changes.topic {
        set_room_fields(s, db, room_id, doc! { "topic": topic }).await?;
    }
    if let Some(password_hash) = &changes.password_hash {
        let value = match password_hash {
            Some(hash) => Bson::String(hash.clone()),
            None => Bson::Null,
        };
        set_room_fields(s, db, room_id, doc! { "password_hash": value }).await?;
    }

    let room = require_room(s, db, room_id).await?;
    let mut fanouts = vec![room_updated(s, db, &room).await?];
    for child in renamed {
        let child = require_room(s, db, child).await?;
        fanouts.push(room_updated(s, db, &child).await?);
    }
    Ok((room, fanouts))
}

async fn set_room_fields(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    fields: Document,
) -> StoreResult<()> {
    db.rooms
        .update_one(doc! { "_id": room_id.to_string() }, doc! { "$set": fields })
        .session(&mut *s)
        .await
        .map_err(|error| conflict(error, &[(index::PATH, Conflict::RoomPathTaken)]))?;
    Ok(())
}

/// Deletes the room, its sub-rooms, and everything that belongs to them, as the SQLite
/// backend's cascading foreign keys do.
///
/// NOTE: the whole deletion is one transaction, as in the SQLite backend. A room with
/// very many messages may exceed MongoDB's transaction time limit (60 seconds by
/// default) and fail, leaving everything in place.
pub(super) async fn delete_room(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
) -> StoreResult<Vec<Fanout>> {
    let mut rooms = descendant_ids(s, db, room_id).await?;
    rooms.push(room_id);

    let mut fanouts = Vec::with_capacity(rooms.len());
    for room in &rooms {
        delete_room_events(s, db, *room).await?;
        let record = require_room(s, db, *room).await?;
        let members = room_audience(s, db, &record).await?;
        let data = serde_json::to_value(DeletedEvent { id: *room })?;
        fanouts.push(
            emit(
                s,
                db,
                EventKind::RoomDeleted,
                Some(*room),
                None,
                data,
                Audience::Users(&members),
            )
            .await?,
        );
    }

    let ids: Vec<String> = rooms.iter().map(Uuid::to_string).collect();
    let in_rooms = doc! { "room_id": { "$in": &ids } };
    // Attachments of files in these rooms go too, whichever room their message is in.
    let cursor = db
        .files
        .clone_with_type::<Document>()
        .find(in_rooms.clone())
        .projection(doc! { "_id": 1 })
        .session(&mut *s)
        .await?;
    let file_ids: Vec<Bson> = collect(cursor, s)
        .await?
        .into_iter()
        .filter_map(|file| file.get("_id").cloned())
        .collect();
    db.attachments
        .delete_many(doc! { "$or": [in_rooms.clone(), { "file_id": { "$in": file_ids } }] })
        .session(&mut *s)
        .await?;
    db.reactions
        .delete_many(in_rooms.clone())
        .session(&mut *s)
        .await?;
    db.messages
        .delete_many(in_rooms.clone())
        .session(&mut *s)
        .await?;
    db.files
        .delete_many(in_rooms.clone())
        .session(&mut *s)
        .await?;
    db.memberships
        .delete_many(in_rooms.clone())
        .session(&mut *s)
        .await?;
    db.bans
        .delete_many(in_rooms.clone())
        .session(&mut *s)
        .await?;
    db.invites.delete_many(in_rooms).session(&mut *s).await?;
    db.rooms
        .delete_many(doc! { "_id": { "$in": &ids } })
        .session(&mut *s)
        .await?;
    Ok(fanouts)
}

pub(super) async fn create_invite(
    s: &mut ClientSession,
    db: &Db,
    invite: InviteRecord,
) -> StoreResult<()> {
    db.invites
        .insert_one(InviteDoc {
            code_hash: invite.code_hash,
            room_id: invite.room_id.to_string(),
            created_by: invite.created_by.to_string(),
            expires_at: to_date(invite.expires_at),
            single_use: invite.single_use,
            uses: 0,
            created_at: DateTime::now(),
        })
        .session(&mut *s)
        .await?;
    Ok(())
}

/// Builds the filter that matches an invite which may still be used.
fn usable_invite(code_hash: &str) -> Document {
    doc! {
        "_id": code_hash,
        "expires_at": { "$gt": DateTime::now() },
        "$or": [{ "single_use": false }, { "uses": 0_i64 }],
    }
}

pub(super) async fn find_invite(
    s: &mut ClientSession,
    db: &Db,
    code_hash: &str,
) -> StoreResult<Option<InviteRecord>> {
    let invite = db
        .invites
        .find_one(usable_invite(code_hash))
        .session(&mut *s)
        .await?;
    invite.as_ref().map(InviteDoc::to_record).transpose()
}

/// Uses up an invite. The check and the count are one `findAndModify`, so two
/// concurrent redemptions of a single-use invite cannot both succeed.
pub(super) async fn redeem_invite(
    s: &mut ClientSession,
    db: &Db,
    code_hash: &str,
) -> StoreResult<Option<InviteRecord>> {
    let invite = db
        .invites
        .find_one_and_update(usable_invite(code_hash), doc! { "$inc": { "uses": 1_i64 } })
        .session(&mut *s)
        .await?;
    invite.as_ref().map(InviteDoc::to_record).transpose()
}

async fn insert_membership(
    s: &mut ClientSession,
    db: &Db,
    room_id: Uuid,
    user_id: Uuid,
    role: Role,
) -> StoreResult<()> {
    db.memberships
        .insert_one(MembershipDoc {
            id: pair_id(room_id, user_id),
            room_id: room_id.to_string(),
            user_id: user_id.to_string(),
            role: role.as_str().to_string(),
            joined_at: DateTime::now(),
        })
        .session(&mut *s)
        .await
        .map_err(|error| conflict(error, &[(index::ID, Conflict::AlreadyMember)]))?;
    Ok(())
}

async fn member_event(
    s: &mut ClientSession,
    db: &Db,
    kind: EventKind,
    room_id: Uuid,
    user_id: Uuid,
    also: &[Uuid],
) -> StoreResult<Fanout> {
    let member = member(s, db, room_id, user_id).await?;
    let data = serde_json::to_value(MemberEvent { user_id, member })?;
    emit(
        s,
        db,
        kind,
        Some(room_id),
        None,
        data,
        Audience::RoomAnd(room_id, also),
    )
    .await
}

async fn room_updated(s: &mut ClientSession, db: &Db, room: &RoomRecord) -> StoreResult<Fanout> {
    let data = serde_json::to_value(room.to_model(None))?;
    let audience = room_audience(s, db, room).await?;
    emit(
        s,
        db,
        EventKind::RoomUpdated,
        Some(room.id),
        None,
        data,
        Audience::Users(&audience),
    )
    .await
}

/// Lists the room and every room below it with their depth, the room itself first
/// and each level after the one above it.
async fn subtree(s: &mut ClientSession, db: &Db, room_id: Uuid) -> StoreResult<Vec<(Uuid, u32)>> {
    let mut rooms = vec![(room_id, 0)];
    let mut level = vec![room_id.to_string()];
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        let cursor = db
            .rooms
            .clone_with_type::<Document>()
            .find(doc! { "parent_id": { "$in": &level } })
            .projection(doc! { "_id": 1 })
            .session(&mut *s)
            .await?;
        level = collect(cursor, s)
            .await?
            .into_iter()
            .filter_map(|room| room.get_str("_id").ok().map(str::to_string))
            .collect();
        for id in &level {
            rooms.push((parse_id(id)?, depth));
        }
    }
    Ok(rooms)
}

/// Lists the rooms below `room_id`, deepest first.
async fn descendant_ids(s: &mut ClientSession, db: &Db, room_id: Uuid) -> StoreResult<Vec<Uuid>> {
    let subtree = subtree(s, db, room_id).await?;
    Ok(subtree
        .into_iter()
        .rev()
        .filter(|(_, depth)| *depth > 0)
        .map(|(id, _)| id)
        .collect())
}

/// Rooms matching `filter`, ordered by path.
async fn find_rooms(s: &mut ClientSession, db: &Db, filter: Document) -> StoreResult<Vec<RoomDoc>> {
    let cursor = db
        .rooms
        .find(filter)
        .sort(doc! { "path": 1 })
        .session(&mut *s)
        .await?;
    collect(cursor, s).await
}

async fn one_record(
    s: &mut ClientSession,
    db: &Db,
    room: Option<RoomDoc>,
) -> StoreResult<Option<RoomRecord>> {
    let Some(room) = room else {
        return Ok(None);
    };
    Ok(records(s, db, vec![room]).await?.pop())
}

/// Converts `rooms` to records, in the same order, with their member counts.
async fn records(
    s: &mut ClientSession,
    db: &Db,
    rooms: Vec<RoomDoc>,
) -> StoreResult<Vec<RoomRecord>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let ids: HashSet<&String> = rooms.iter().map(|room| &room.id).collect();
    let ids: Vec<&String> = ids.into_iter().collect();
    let pipeline = [
        doc! { "$match": { "room_id": { "$in": ids } } },
        doc! { "$group": { "_id": "$room_id", "count": { "$sum": 1 } } },
    ];
    let cursor = db.memberships.aggregate(pipeline).session(&mut *s).await?;
    let mut counts = HashMap::new();
    for group in collect(cursor, s).await? {
        let room_id = group.get_str("_id").unwrap_or_default().to_string();
        counts.insert(room_id, integer(&group, "count")? as u32);
    }
    rooms
        .iter()
        .map(|room| room.to_record(counts.get(&room.id).copied().unwrap_or(0)))
        .collect()
}
