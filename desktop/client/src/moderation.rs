//! The engine's calls for room moderation and for joining others: room settings,
//! invites, kicks, bans and roles, pins, the room's files, and direct messages.
//!
//! These calls need the server. The server checks every role, so the engine passes its
//! rejections on unchanged, and after a change it refetches what the change touched into
//! the cache.

use roomler_shared::api::{Ban, RoomFileInfo, UpdateRoomRequest};
use roomler_shared::model::{Attachment, Member, Message, Role, Room};
use uuid::Uuid;

use crate::api::CreatedInvite;
use crate::engine::Engine;
use crate::error::{ClientError, Result};

impl Engine {
    /// Changes a room's name, topic or password and refetches the room list. A password of
    /// `""` removes the password.
    pub async fn update_room(&self, room_id: Uuid, changes: UpdateRoomRequest) -> Result<Room> {
        let room = self.api().update_room(room_id, &changes).await?;
        self.cache().upsert_room(&room)?;
        self.refresh_after_change().await?;
        Ok(room)
    }

    pub async fn create_invite(
        &self,
        room_id: Uuid,
        expires_in_secs: Option<u64>,
        single_use: bool,
    ) -> Result<CreatedInvite> {
        self.api()
            .create_invite(room_id, expires_in_secs, single_use)
            .await
    }

    /// Joins the room of an invite, given as its code or as a link that ends with it.
    pub async fn accept_invite(&self, code_or_link: &str) -> Result<Room> {
        let code = invite_code(code_or_link)?;
        let room = self.api().accept_invite(code).await?;
        self.cache().upsert_room(&room)?;
        self.refresh_after_change().await?;
        Ok(room)
    }

    /// Opens the direct room with the user named `username`, creating it when there is
    /// none yet. The server returns the existing room for the same participants.
    pub async fn open_direct(&self, username: &str) -> Result<Room> {
        let username = username.trim().trim_start_matches('@');
        if username.is_empty() {
            return Err(ClientError::Usage(
                "the username is empty: type the username of the person to message".into(),
            ));
        }
        let user = self.api().find_user(username).await?;
        let room = self.api().create_direct(vec![user.id]).await?;
        self.cache().upsert_room(&room)?;
        self.refresh_after_change().await?;
        Ok(room)
    }

    /// Removes a member from a room and returns the members left.
    pub async fn kick(&self, room_id: Uuid, user_id: Uuid) -> Result<Vec<Member>> {
        self.api().kick(room_id, user_id).await?;
        self.refresh_members(room_id).await
    }

    /// Bans a user from a room and returns the members left.
    pub async fn ban(&self, room_id: Uuid, user_id: Uuid) -> Result<Vec<Member>> {
        self.api().ban(room_id, user_id).await?;
        self.refresh_members(room_id).await
    }

    /// Gives a member the role `role` (member or moderator) and returns the members.
    pub async fn set_role(&self, room_id: Uuid, user_id: Uuid, role: Role) -> Result<Vec<Member>> {
        self.api().set_role(room_id, user_id, role).await?;
        self.refresh_members(room_id).await
    }

    /// Fetches the users banned from a room, newest first.
    pub async fn bans(&self, room_id: Uuid) -> Result<Vec<Ban>> {
        self.api().bans(room_id).await
    }

    /// Lifts a user's ban from a room and returns the bans left.
    pub async fn unban(&self, room_id: Uuid, user_id: Uuid) -> Result<Vec<Ban>> {
        self.api().unban(room_id, user_id).await?;
        self.api().bans(room_id).await
    }

    /// Makes the member `user_id` the room's owner and returns the members. The user, the
    /// owner until now, becomes a moderator, which the refetched room list shows too.
    pub async fn transfer_ownership(&self, room_id: Uuid, user_id: Uuid) -> Result<Vec<Member>> {
        self.api().transfer_ownership(room_id, user_id).await?;
        self.refresh_members(room_id).await
    }

    /// Pins or unpins a message and stores its new state in the cache.
    pub async fn set_pin(&self, message_id: Uuid, pinned: bool) -> Result<Message> {
        let message = self.api().set_pin(message_id, pinned).await?;
        self.cache()
            .store_messages(message.room_id, std::slice::from_ref(&message), false)?;
        Ok(message)
    }

    /// Fetches the pinned messages of a room from the server.
    pub async fn pins(&self, room_id: Uuid) -> Result<Vec<Message>> {
        self.api().pins(room_id).await
    }

    /// Lists a room's files from the server, newest first, each with its uploader and
    /// upload time.
    pub async fn room_files(&self, room_id: Uuid) -> Result<Vec<RoomFileInfo>> {
        self.api().room_files(room_id).await
    }

    /// Finds a file in a room's file list on the server and returns it as an attachment for
    /// [`Engine::download`]. The list comes from the server because no cached message may
    /// carry the file, so offline this fails with a network error even for a file
    /// downloaded before.
    pub async fn room_file(&self, room_id: Uuid, file_id: Uuid) -> Result<Attachment> {
        let file = self
            .room_files(room_id)
            .await?
            .into_iter()
            .find(|file| file.id == file_id)
            .ok_or_else(|| {
                ClientError::Usage(format!(
                    "file {file_id} not found in the files of room {room_id}; the message \
                     that attached it may have been deleted"
                ))
            })?;
        Ok(Attachment {
            id: file.id,
            url: format!("/api/files/{}", file.id),
            name: file.name,
            size: file.size,
            mime: file.mime,
            thumbnail_url: None,
        })
    }

    /// Refetches a room's members into the cache, and the room list for its member count.
    async fn refresh_members(&self, room_id: Uuid) -> Result<Vec<Member>> {
        let members = self.api().members(room_id).await?;
        self.cache().replace_members(room_id, &members)?;
        self.refresh_after_change().await?;
        Ok(members)
    }

    /// Refetches the room list after a change the server accepted. Losing the network at
    /// this point is not the change's failure, and the live stream brings the room's
    /// event later, so only a rejection is returned.
    async fn refresh_after_change(&self) -> Result<()> {
        match self.refresh_rooms().await {
            Ok(_) => Ok(()),
            Err(error) if error.is_network() => {
                tracing::debug!(%error, "failed to refetch the rooms after a change");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

/// Extracts the invite code from a code or a link such as
/// `https://chat.example.com/invite/CODE`, and checks that it has only the characters of
/// the server's codes (URL-safe base64).
pub fn invite_code(input: &str) -> Result<&str> {
    let trimmed = input.trim();
    let without_suffix = trimmed.split(['?', '#']).next().unwrap_or_default();
    // A link's code follows its last `/invite/`. Anything else with a slash is no invite.
    let code = match without_suffix.rsplit_once("/invite/") {
        Some((_, code)) => code.trim_end_matches('/'),
        None => without_suffix,
    };
    let valid = code
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if code.is_empty() || !valid {
        return Err(ClientError::Usage(format!(
            "invalid invite {trimmed:?}: paste the invite code or the whole invite link, \
             e.g. https://chat.example.com/invite/CODE"
        )));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_code_from_code_and_links() {
        let cases = [
            ("abcDEF123-_x", "abcDEF123-_x"),
            ("  abc  ", "abc"),
            ("https://chat.example.com/invite/abc", "abc"),
            ("https://chat.example.com/invite/abc/", "abc"),
            ("http://host:3000/invite/abc?from=mail#top", "abc"),
        ];
        for (input, expected) in cases {
            assert_eq!(invite_code(input).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn invite_code_rejects_garbage() {
        for input in [
            "",
            "   ",
            "https://chat.example.com/invite/",
            "a b",
            "code!",
        ] {
            let error = invite_code(input).unwrap_err();
            assert!(
                matches!(&error, ClientError::Usage(message) if message.contains("invalid invite")),
                "{input:?}: {error}"
            );
        }
    }
}
