//! Calls across server replicas, over the same Redis as the event bus.
//!
//! Each call lives on one replica, its host, which keeps every participant's
//! Janus session and runs every request of the call, so the call's state has one
//! owner and one lock. A replica that receives a request for a call that another
//! replica hosts forwards it there. The host runs it and sends the reply and the
//! connection's signals back. Call events reach the room's members on every
//! replica over the bus.
//!
//! What lives in Redis:
//!
//! - `roomler:replica:{id}`: a replica's presence, refreshed every
//!   [`PRESENCE_REFRESH`] and expiring after [`PRESENCE_TTL`], so that the others
//!   notice a replica that stopped.
//! - `roomler:call-host:{room}`: the replica that hosts the room's call, a lease
//!   that the host refreshes while the call goes on. The first `join` of a call
//!   claims it, so two replicas never both start a room's call.
//! - `roomler:call:{room}`: the call's [`CallSummary`] for the room lists of every
//!   replica, with the lease's lifetime.
//! - the channel `roomler:calls:{id}`: requests for the calls a replica hosts and
//!   frames for the connections it holds; the channel `roomler:calls` for what
//!   every replica must hear (a closed connection, a removed member, a replica
//!   that stops).
//!
//! When a host stops, the replicas holding its calls' connections close them, and
//! the clients join again: the first join claims the call for a live replica.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use roomler_shared::call::CallSummary;
use roomler_shared::ws::Control;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CallContext, ConnectionKey, Routed};
use crate::AppState;
use crate::bus::{SessionEnd, keep_subscribed, redis_client};

/// How long a replica counts as alive after its last presence refresh.
const PRESENCE_TTL: Duration = Duration::from_secs(10);
/// How often a replica refreshes its presence and checks the replicas it depends
/// on. A third of the lifetime, so that one late refresh does not end it.
const PRESENCE_REFRESH: Duration = Duration::from_secs(3);
/// How long a call's host lease lasts without a refresh. A join that finds the
/// host's presence gone takes the call over at once, so this bounds only how long
/// a host that lost Redis keeps its calls.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// How often a host refreshes the leases of its calls.
pub(super) const LEASE_REFRESH: Duration = Duration::from_secs(5);
/// How long a Redis command may take before the call request fails.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a request may be passed on before it fails: a host that ended the call
/// while the request travelled passes it to the next host once.
pub(super) const MAX_HOPS: u8 = 3;

/// The channel that every replica subscribes to.
const SHARED_CHANNEL: &str = "roomler:calls";

/// Claims the lease in KEYS[1] for ARGV[1] (with a lifetime of ARGV[2] ms) when it
/// is free or already ours, and returns the holder.
const CLAIM: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder
";

/// Like [`CLAIM`], and stores the summary ARGV[3] in KEYS[2] with the same lifetime
/// when the lease is ours.
const REFRESH: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder ~= false and holder ~= ARGV[1] then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return ARGV[1]
";

/// Deletes the lease KEYS[1] and the summary KEYS[2] if ARGV[1] holds the lease.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
return 0
";

fn presence_key(replica: Uuid) -> String {
    format!("roomler:replica:{replica}")
}

fn host_key(room_id: Uuid) -> String {
    format!("roomler:call-host:{room_id}")
}

fn summary_key(room_id: Uuid) -> String {
    format!("roomler:call:{room_id}")
}

fn replica_channel(replica: Uuid) -> String {
    format!("roomler:calls:{replica}")
}

/// A message between replicas about calls.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Message {
    /// A call request of `connection`, for the host of the room's call.
    Request {
        connection: ConnectionKey,
        user_id: Uuid,
        routed: Routed,
    },
    /// A reply or signal for a connection of the receiving replica, from the host of
    /// the call it concerns.
    Frame {
        connection_id: u64,
        host: Uuid,
        control: Control,
    },
    /// Close a connection of the receiving replica, whose call moved to another host.
    Close { connection_id: u64 },
    /// A connection closed: its calls on any host end for it.
    Disconnect { connection: ConnectionKey },
    /// The user may no longer be in the room's call, on whichever replica hosts it.
    Remove {
        room_id: Uuid,
        user_id: Uuid,
        reason: String,
    },
    /// A replica is stopping: its calls and connections go with it.
    Gone { replica: Uuid },
}

/// The holder of a call's lease after a claim.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Claim {
    Ours,
    Held(Uuid),
}

/// A connection of this replica that made call requests.
struct LocalConnection {
    context: CallContext,
    /// Cancelled to close the connection, so that its client joins again.
    close: CancellationToken,
    /// The host of each room's call that the connection's requests went to.
    hosts: HashMap<Uuid, Uuid>,
    /// Whether a request went to another replica, which must hear of the close.
    forwarded: bool,
}

/// Work for the task that runs one remote connection's requests in order.
enum RemoteWork {
    Request(Routed),
    Disconnect,
}

/// This replica's part in calls across replicas.
pub struct Cluster {
    replica: Uuid,
    client: redis::Client,
    commands: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    local: Mutex<HashMap<u64, LocalConnection>>,
    remote: Mutex<HashMap<ConnectionKey, mpsc::UnboundedSender<RemoteWork>>>,
    /// Set while Redis fails, so the outage is logged once.
    down: AtomicBool,
    /// The server's shutdown, after which this replica gives its calls up.
    shutdown: CancellationToken,
}

impl Cluster {
    /// Prepares the cluster on the Redis at `url`, which need not be up yet.
    pub fn new(url: &str, replica: Uuid, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let client = redis_client(url)?;
        Ok(Cluster {
            replica,
            client,
            commands: tokio::sync::Mutex::new(None),
            local: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
            down: AtomicBool::new(false),
            shutdown,
        })
    }

    /// Runs one Redis command, connecting first if needed. Fails after
    /// [`REDIS_TIMEOUT`], and logs the first failure of an outage.
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> Option<T> {
        let result = tokio::time::timeout(REDIS_TIMEOUT, async {
            let mut guard = self.commands.lock().await;
            if guard.is_none() {
                *guard = Some(self.client.get_multiplexed_async_connection().await?);
            }
            let connection = guard.as_mut().expect("connected above");
            let result = command.query_async(connection).await;
            if result.is_err() {
                *guard = None;
            }
            result
        })
        .await;
        match result {
            Ok(Ok(value)) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("calls reach Redis again");
                }
                Some(value)
            }
            Ok(Err(error)) => {
                self.failed(&error.to_string());
                None
            }
            Err(_) => {
                self.failed("timed out");
                None
            }
        }
    }

    fn failed(&self, error: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "calls cannot reach Redis; each replica serves the calls it hosts"
            );
        }
    }

    async fn publish(&self, channel: &str, message: &Message) -> bool {
        let payload = serde_json::to_string(message).expect("a cluster message serializes");
        let mut command = redis::cmd("PUBLISH");
        command.arg(channel).arg(payload);
        self.query::<i64>(&command).await.is_some()
    }

    fn script(script: &str, keys: &[String], args: &[String]) -> redis::Cmd {
        let mut command = redis::cmd("EVAL");
        command.arg(script).arg(keys.len()).arg(keys).arg(args);
        command
    }

    /// Claims the host lease of the room's call for this replica, taking it over
    /// from a holder that stopped. `None` when Redis is unreachable or this replica
    /// is shutting down.
    pub(super) async fn claim(&self, room_id: Uuid) -> Option<Claim> {
        if self.shutdown.is_cancelled() {
            return None;
        }
        let command = Self::script(
            CLAIM,
            &[host_key(room_id)],
            &[self.replica.to_string(), LEASE_TTL.as_millis().to_string()],
        );
        let holder: String = self.query(&command).await?;
        match self.claim_of(&holder) {
            Claim::Held(host) if !self.is_alive(host).await => {
                tracing::info!(%room_id, %host, "taking over the call of a replica that stopped");
                self.release_for(room_id, host).await;
                let holder: String = self.query(&command).await?;
                Some(self.claim_of(&holder))
            }
            claim => Some(claim),
        }
    }

    fn claim_of(&self, holder: &str) -> Claim {
        match holder.parse::<Uuid>() {
            Ok(replica) if replica != self.replica => Claim::Held(replica),
            _ => Claim::Ours,
        }
    }

    /// Refreshes the lease of a call this replica hosts and stores its summary.
    /// Returns the holder, another replica when the lease went to it meanwhile.
    pub(super) async fn refresh(&self, room_id: Uuid, summary: &CallSummary) -> Option<Claim> {
        // A replica that shuts down has released its leases, and must not take them
        // back from the replicas that take its calls over.
        if self.shutdown.is_cancelled() {
            return None;
        }
        let summary = serde_json::to_string(summary).expect("a call summary serializes");
        let command = Self::script(
            REFRESH,
            &[host_key(room_id), summary_key(room_id)],
            &[
                self.replica.to_string(),
                LEASE_TTL.as_millis().to_string(),
                summary,
            ],
        );
        let holder: String = self.query(&command).await?;
        Some(self.claim_of(&holder))
    }

    /// Releases the lease of a call that ended here.
    pub(super) async fn release(&self, room_id: Uuid) {
        self.release_for(room_id, self.replica).await;
    }

    async fn release_for(&self, room_id: Uuid, holder: Uuid) {
        let command = Self::script(
            RELEASE,
            &[host_key(room_id), summary_key(room_id)],
            &[holder.to_string()],
        );
        let _: Option<i64> = self.query(&command).await;
    }

    /// Returns the live replica other than this one that hosts the room's call, if
    /// any. A lease left by a replica that stopped is removed, so that a join here
    /// can take the call over.
    pub(super) async fn remote_host(&self, room_id: Uuid) -> Option<Uuid> {
        let mut command = redis::cmd("GET");
        command.arg(host_key(room_id));
        let holder: Option<String> = self.query(&command).await?;
        let host = holder?.parse::<Uuid>().ok()?;
        if host == self.replica {
            return None;
        }
        if self.is_alive(host).await {
            return Some(host);
        }
        tracing::info!(%room_id, %host, "taking over the call of a replica that stopped");
        self.release_for(room_id, host).await;
        None
    }

    async fn is_alive(&self, replica: Uuid) -> bool {
        let mut command = redis::cmd("EXISTS");
        command.arg(presence_key(replica));
        // While Redis is unreachable, nothing is known, so nothing is torn down.
        self.query::<i64>(&command)
            .await
            .is_none_or(|count| count > 0)
    }

    /// Reads the summaries of the calls of `rooms` that other replicas host.
    pub(super) async fn summaries(&self, rooms: &[Uuid]) -> HashMap<Uuid, CallSummary> {
        if rooms.is_empty() {
            return HashMap::new();
        }
        let mut command = redis::cmd("MGET");
        for room_id in rooms {
            command.arg(summary_key(*room_id));
        }
        let Some(values) = self.query::<Vec<Option<String>>>(&command).await else {
            return HashMap::new();
        };
        rooms
            .iter()
            .zip(values)
            .filter_map(|(room_id, value)| {
                let summary = serde_json::from_str(&value?).ok()?;
                Some((*room_id, summary))
            })
            .collect()
    }

    /// Remembers a connection of this replica, for the frames that hosts send it.
    pub(super) fn connected(&self, context: CallContext, close: CancellationToken) {
        let connection = LocalConnection {
            context,
            close,
            hosts: HashMap::new(),
            forwarded: false,
        };
        self.local
            .lock()
            .unwrap()
            .insert(connection.context.connection.id, connection);
    }

    /// Forgets a closed connection of this replica, and announces the close to the
    /// hosts of its calls, which end them.
    pub(super) async fn disconnected(&self, connection: ConnectionKey) {
        let forwarded = self
            .local
            .lock()
            .unwrap()
            .remove(&connection.id)
            .is_some_and(|local| local.forwarded);
        if forwarded {
            let message = Message::Disconnect { connection };
            self.publish(SHARED_CHANNEL, &message).await;
        }
    }

    /// Sends a request of a connection to the replica that hosts the room's call.
    /// Returns false when Redis did not take it.
    pub(super) async fn forward(&self, host: Uuid, context: &CallContext, routed: Routed) -> bool {
        let room_id = routed.room_id;
        if context.connection.replica == self.replica
            && let Some(local) = self.local.lock().unwrap().get_mut(&context.connection.id)
        {
            local.forwarded = true;
            local.hosts.insert(room_id, host);
        }
        let action = routed.request.action();
        tracing::debug!(%room_id, %host, action, "forwarding a call request");
        let message = Message::Request {
            connection: context.connection,
            user_id: context.user_id,
            routed,
        };
        self.publish(&replica_channel(host), &message).await
    }

    /// Asks the replica holding `connection` to close it, so that its client joins
    /// the call again where it now lives.
    pub(super) async fn close(&self, connection: ConnectionKey) {
        if connection.replica == self.replica {
            if let Some(local) = self.local.lock().unwrap().get(&connection.id) {
                local.close.cancel();
            }
            return;
        }
        let message = Message::Close {
            connection_id: connection.id,
        };
        self.publish(&replica_channel(connection.replica), &message)
            .await;
    }

    /// Asks every other replica to remove the user from the room's call, if it
    /// hosts it.
    pub(super) async fn remove_everywhere(&self, room_id: Uuid, user_id: Uuid, reason: &str) {
        let message = Message::Remove {
            room_id,
            user_id,
            reason: reason.to_string(),
        };
        self.publish(SHARED_CHANNEL, &message).await;
    }

    /// Runs the cluster until shutdown: the subscription to this replica's channels,
    /// the presence refresh, and the checks on the replicas this one depends on.
    pub async fn run(self: Arc<Self>, state: AppState) {
        let shutdown = state.shutdown.clone();
        tokio::spawn(self.clone().keep_present(state.clone()));
        let outage = "the call channels of Redis are unreachable; serving the calls hosted here";
        keep_subscribed(&shutdown, outage, |_| self.listen(&state)).await;

        // The calls hosted here end with this process, so other replicas may start
        // them again at once.
        for room_id in state.calls.hosted_rooms() {
            self.release(room_id).await;
        }
        // Tell the others at once rather than after the presence expires.
        let mut command = redis::cmd("DEL");
        command.arg(presence_key(self.replica));
        let _: Option<i64> = self.query(&command).await;
        let gone = Message::Gone {
            replica: self.replica,
        };
        self.publish(SHARED_CHANNEL, &gone).await;
    }

    /// Runs one subscription to this replica's channels until it fails.
    async fn listen(self: &Arc<Self>, state: &AppState) -> SessionEnd {
        let mut pubsub = match self.client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(error) => return SessionEnd::failed(error),
        };
        let channels = [replica_channel(self.replica), SHARED_CHANNEL.to_string()];
        if let Err(error) = pubsub.subscribe(&channels).await {
            return SessionEnd::failed(error);
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Message>(&payload) {
                Ok(message) => self.receive(state, message),
                Err(error) => tracing::warn!(%error, "ignored an invalid call message from Redis"),
            }
        }
        SessionEnd {
            subscribed: true,
            error: anyhow::anyhow!("the Redis subscription ended"),
        }
    }

    fn receive(self: &Arc<Self>, state: &AppState, message: Message) {
        match message {
            Message::Request {
                connection,
                user_id,
                routed,
            } => {
                let worker = self.remote_worker(state, connection, user_id);
                let _ = worker.send(RemoteWork::Request(routed));
            }
            Message::Frame {
                connection_id,
                host,
                control,
            } => self.deliver(connection_id, host, control),
            Message::Close { connection_id } => {
                if let Some(local) = self.local.lock().unwrap().get(&connection_id) {
                    local.close.cancel();
                }
            }
            Message::Disconnect { connection, .. } => {
                if let Some(worker) = self.remote.lock().unwrap().remove(&connection) {
                    let _ = worker.send(RemoteWork::Disconnect);
                }
            }
            Message::Remove {
                room_id,
                user_id,
                reason,
            } => {
                // On a task of its own, because it waits for Janus and the frames
                // for other connections must not wait behind it.
                if state.calls.hosts(room_id) {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let calls = state.calls.clone();
                        calls.remove_here(&state, room_id, user_id, &reason).await;
                    });
                }
            }
            Message::Gone { replica } if replica != self.replica => {
                self.replica_gone(replica);
            }
            Message::Gone { .. } => {}
        }
    }

    /// Hands a host's frame to a connection of this replica.
    fn deliver(&self, connection_id: u64, host: Uuid, control: Control) {
        let mut local = self.local.lock().unwrap();
        let Some(connection) = local.get_mut(&connection_id) else {
            return;
        };
        if let Control::CallReply { room_id, .. } | Control::CallError { room_id, .. } = &control {
            connection.hosts.insert(*room_id, host);
        }
        let _ = connection.context.frames.send(control);
    }

    /// Returns the queue of the task that runs a remote connection's requests in
    /// order, starting the task for its first request.
    fn remote_worker(
        self: &Arc<Self>,
        state: &AppState,
        connection: ConnectionKey,
        user_id: Uuid,
    ) -> mpsc::UnboundedSender<RemoteWork> {
        let mut remote = self.remote.lock().unwrap();
        if let Some(worker) = remote.get(&connection) {
            return worker.clone();
        }
        let (sender, queue) = mpsc::unbounded_channel();
        remote.insert(connection, sender.clone());
        let (frames, outgoing) = mpsc::unbounded_channel();
        let context = CallContext {
            user_id,
            connection,
            frames,
        };
        tokio::spawn(self.clone().send_frames(connection, outgoing));
        tokio::spawn(run_remote(state.clone(), context, queue));
        sender
    }

    /// Sends the frames for a remote connection to the replica that accepted it,
    /// in order.
    async fn send_frames(
        self: Arc<Self>,
        connection: ConnectionKey,
        mut outgoing: mpsc::UnboundedReceiver<Control>,
    ) {
        let channel = replica_channel(connection.replica);
        while let Some(control) = outgoing.recv().await {
            let message = Message::Frame {
                connection_id: connection.id,
                host: self.replica,
                control,
            };
            self.publish(&channel, &message).await;
        }
    }

    /// Ends what a stopped replica left here: the calls of its connections that this
    /// replica hosts, and this replica's connections to calls it hosted.
    fn replica_gone(&self, replica: Uuid) {
        let workers: Vec<_> = {
            let mut remote = self.remote.lock().unwrap();
            let gone: Vec<ConnectionKey> = remote
                .keys()
                .filter(|connection| connection.replica == replica)
                .copied()
                .collect();
            gone.iter()
                .filter_map(|connection| remote.remove(connection))
                .collect()
        };
        for worker in workers {
            let _ = worker.send(RemoteWork::Disconnect);
        }
        let local = self.local.lock().unwrap();
        for connection in local.values() {
            if connection.hosts.values().any(|host| *host == replica) {
                tracing::info!(
                    %replica,
                    connection_id = connection.context.connection.id,
                    "closing a call connection whose host stopped, so that its client joins again"
                );
                connection.close.cancel();
            }
        }
    }

    /// Refreshes this replica's presence, and treats replicas whose presence expired
    /// as gone, until shutdown.
    async fn keep_present(self: Arc<Self>, state: AppState) {
        let mut tick = tokio::time::interval(PRESENCE_REFRESH);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = state.shutdown.cancelled() => return,
            }
            let mut command = redis::cmd("SET");
            command
                .arg(presence_key(self.replica))
                .arg(1)
                .arg("PX")
                .arg(PRESENCE_TTL.as_millis() as u64);
            let _: Option<String> = self.query(&command).await;

            for replica in self.dependencies() {
                if !self.is_alive(replica).await {
                    tracing::warn!(%replica, "a replica stopped refreshing its presence");
                    self.replica_gone(replica);
                }
            }
        }
    }

    /// Returns the other replicas whose connections joined calls hosted here, and
    /// those that host calls of this replica's connections.
    fn dependencies(&self) -> HashSet<Uuid> {
        let mut replicas: HashSet<Uuid> = self
            .remote
            .lock()
            .unwrap()
            .keys()
            .map(|connection| connection.replica)
            .collect();
        for connection in self.local.lock().unwrap().values() {
            replicas.extend(connection.hosts.values().copied());
        }
        replicas.remove(&self.replica);
        replicas
    }
}

/// Runs a remote connection's call requests in order, as a WebSocket's call worker
/// does for a local one, until the connection closes.
async fn run_remote(
    state: AppState,
    context: CallContext,
    mut queue: mpsc::UnboundedReceiver<RemoteWork>,
) {
    while let Some(work) = queue.recv().await {
        match work {
            RemoteWork::Request(routed) => state.calls.dispatch(&state, &context, routed).await,
            RemoteWork::Disconnect => break,
        }
    }
    state
        .calls
        .disconnect(&state, context.user_id, context.connection)
        .await;
}
