//! The stage of a presentation. Audience members raise and lower their hands,
//! and the hosts let them speak or move them back to the audience. Each step checks
//! the call's format and the caller's role under the call's lock, and the server
//! refuses an audience member's `publish`.

use std::sync::Arc;

use roomler_shared::call::{CallErrorCode, CallEvent, CallFormat, CallReply, CallRole};
use roomler_shared::model::Role;
use serde_json::json;
use uuid::Uuid;

use super::janus::JanusError;
use super::{Call, CallContext, CallFailure, CallResult, Calls, Member, broadcast, invalid};
use crate::AppState;

/// VideoRoom's error code (Janus 1.1) for an `unpublish` of a participant whose
/// media is not up yet, or who never published.
const JANUS_NOT_PUBLISHED: i64 = 435;

/// Builds the `forbidden` failure of a `publish` from an audience member.
pub(super) fn audience_may_not_publish(room_id: Uuid) -> CallFailure {
    CallFailure::new(
        CallErrorCode::Forbidden,
        format!(
            "You are in the audience of the presentation in room {room_id}, so you may not \
             publish; raise your hand (raise_hand) and publish once a host invites you to speak."
        ),
    )
}

fn not_a_presentation(room_id: Uuid, action: &str) -> CallFailure {
    invalid(
        room_id,
        &format!(
            "{action} needs a presentation, and the call is a meeting, where everyone may \
             already publish"
        ),
    )
}

fn not_a_host(room_id: Uuid, action: &str) -> CallFailure {
    CallFailure::new(
        CallErrorCode::Forbidden,
        format!(
            "Only a host of the presentation in room {room_id} may {action}; hosts are the \
             participant who started it and the room's owner and moderators."
        ),
    )
}

fn not_participant(room_id: Uuid, user_id: Uuid) -> CallFailure {
    invalid(
        room_id,
        &format!(
            "user {user_id} is not in the call; name a user_id from join or \
             participant_joined"
        ),
    )
}

/// Returns the call after checking that the caller is in it on this connection.
fn joined_call<'a>(
    call: &'a mut Option<Call>,
    room_id: Uuid,
    context: &CallContext,
) -> CallResult<&'a mut Call> {
    let joined = call.as_ref().is_some_and(|call| {
        call.members
            .get(&context.user_id)
            .is_some_and(|member| member.connection == context.connection)
    });
    if !joined {
        return Err(super::not_in_call(room_id));
    }
    Ok(call.as_mut().unwrap())
}

/// Returns the member `target` of a presentation after checking that the caller
/// may act on them: a host on anyone, and with `own` anyone on themselves.
/// `action` names the request and `host_action` what only a host may do.
fn stage_target(
    call: &Call,
    room_id: Uuid,
    context: &CallContext,
    room_role: Role,
    target: Uuid,
    own: bool,
    (action, host_action): (&str, &str),
) -> CallResult<Arc<Member>> {
    if call.format != CallFormat::Presentation {
        return Err(not_a_presentation(room_id, action));
    }
    let allowed = (own && target == context.user_id) || call.is_host(context.user_id, room_role);
    if !allowed {
        return Err(not_a_host(room_id, host_action));
    }
    call.members
        .get(&target)
        .cloned()
        .ok_or_else(|| not_participant(room_id, target))
}

impl Calls {
    /// Raises the caller's hand, if the caller is in the audience of a presentation.
    pub(super) async fn raise_hand(
        &self,
        state: &AppState,
        context: &CallContext,
        room_id: Uuid,
    ) -> CallResult<CallReply> {
        let user_id = context.user_id;
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        let call = joined_call(&mut guard, room_id, context)?;
        if call.format != CallFormat::Presentation {
            return Err(not_a_presentation(room_id, "raise_hand"));
        }
        let raised = {
            let mut info = call.members[&user_id].info.lock().unwrap();
            if info.role != CallRole::Audience {
                return Err(invalid(
                    room_id,
                    "you may already publish, so there is no hand to raise",
                ));
            }
            !std::mem::replace(&mut info.hand_raised, true)
        };
        drop(guard);

        if raised {
            tracing::info!("hand raised");
            broadcast(state, room_id, CallEvent::HandRaised { user_id }).await;
        }
        Ok(CallReply::HandChanged {
            user_id,
            raised: true,
        })
    }

    /// Lowers the hand of `target`: the caller's own, or anyone's for a host.
    pub(super) async fn lower_hand(
        &self,
        state: &AppState,
        context: &CallContext,
        room_id: Uuid,
        room_role: Role,
        target: Uuid,
    ) -> CallResult<CallReply> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        let call = joined_call(&mut guard, room_id, context)?;
        let names = ("lower_hand", "lower someone else's hand");
        let member = stage_target(call, room_id, context, room_role, target, true, names)?;
        let lowered = std::mem::replace(&mut member.info.lock().unwrap().hand_raised, false);
        drop(guard);

        if lowered {
            tracing::info!(%target, "hand lowered");
            let event = CallEvent::HandLowered { user_id: target };
            broadcast(state, room_id, event).await;
        }
        Ok(CallReply::HandChanged {
            user_id: target,
            raised: false,
        })
    }

    /// Lets `target`, an audience member, publish; their hand goes down.
    pub(super) async fn invite_to_speak(
        &self,
        state: &AppState,
        context: &CallContext,
        room_id: Uuid,
        room_role: Role,
        target: Uuid,
    ) -> CallResult<CallReply> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        let call = joined_call(&mut guard, room_id, context)?;
        let names = ("invite_to_speak", "invite someone to speak");
        let member = stage_target(call, room_id, context, room_role, target, false, names)?;
        let role = member.info.lock().unwrap().role;
        match role {
            CallRole::Host | CallRole::Speaker => {
                return Ok(CallReply::RoleChanged {
                    user_id: target,
                    role,
                });
            }
            CallRole::Audience => {}
        }
        if call.publisher_count() >= self.max_participants as usize {
            return Err(CallFailure::new(
                CallErrorCode::Forbidden,
                format!(
                    "The presentation in room {room_id} already has {} participants who \
                     publish, the server's limit; move a speaker to the audience first.",
                    self.max_participants
                ),
            ));
        }
        call.speakers.insert(target);
        let feed_id = set_role(&member, CallRole::Speaker);
        drop(guard);

        tracing::info!(%target, feed_id, "invited to speak");
        Ok(announce_role(state, room_id, target, feed_id, CallRole::Speaker).await)
    }

    /// Moves `target`, a speaker, back to the audience and unpublishes their media
    /// in Janus. A host may move any speaker, and a speaker may move themselves.
    pub(super) async fn move_to_audience(
        &self,
        state: &AppState,
        context: &CallContext,
        room_id: Uuid,
        room_role: Role,
        target: Uuid,
    ) -> CallResult<CallReply> {
        let slot = self.slot(room_id);
        let mut guard = slot.lock().await;
        let call = joined_call(&mut guard, room_id, context)?;
        let names = ("move_to_audience", "move someone to the audience");
        let member = stage_target(call, room_id, context, room_role, target, true, names)?;
        let role = member.info.lock().unwrap().role;
        match role {
            CallRole::Host => {
                return Err(invalid(
                    room_id,
                    &format!(
                        "user {target} is a host of the presentation, and hosts always may \
                         publish"
                    ),
                ));
            }
            CallRole::Audience => {
                return Ok(CallReply::RoleChanged {
                    user_id: target,
                    role,
                });
            }
            CallRole::Speaker => {}
        }
        call.speakers.remove(&target);
        let feed_id = set_role(&member, CallRole::Audience);
        drop(guard);

        // Others learn of the move first, so that they drop the feed before Janus
        // renegotiates their subscriptions without it.
        tracing::info!(%target, feed_id, "moved to the audience");
        let reply = announce_role(state, room_id, target, feed_id, CallRole::Audience).await;
        unpublish(room_id, &member).await?;
        Ok(reply)
    }
}

/// Gives the member `role` and lowers their hand. Returns their feed id. In the
/// audience they publish nothing, so their streams are gone.
fn set_role(member: &Member, role: CallRole) -> u64 {
    let mut info = member.info.lock().unwrap();
    info.role = role;
    info.hand_raised = false;
    if !role.may_publish() {
        info.streams.clear();
    }
    info.feed_id
}

/// Sends the room a `role_changed` event and returns the reply to the host.
async fn announce_role(
    state: &AppState,
    room_id: Uuid,
    user_id: Uuid,
    feed_id: u64,
    role: CallRole,
) -> CallReply {
    let event = CallEvent::RoleChanged {
        user_id,
        feed_id,
        role,
    };
    broadcast(state, room_id, event).await;
    CallReply::RoleChanged { user_id, role }
}

/// Stops the member's publishing in Janus, which closes their publishing peer
/// connection and removes their streams from every subscription.
async fn unpublish(room_id: Uuid, member: &Arc<Member>) -> CallResult<()> {
    let mut peer = member.peer.lock().await;
    peer.published.clear();
    let unpublished = peer
        .publisher
        .message(json!({"request": "unpublish"}), None)
        .await;
    match unpublished {
        Ok(_) => Ok(()),
        // Janus counts a publisher only once its media is up. A publish whose ICE
        // is still under way is hung up, so that it never comes up.
        Err(JanusError::Rejected {
            code: JANUS_NOT_PUBLISHED,
            ..
        }) => {
            if let Err(error) = peer.publisher.hangup().await {
                tracing::debug!(%error, "failed to hang up a publisher that was not up");
            }
            Ok(())
        }
        Err(error) => Err(CallFailure::janus(
            room_id,
            "stop the participant's publishing",
            error,
        )),
    }
}
