-- Schema version 1 of the client's offline cache.

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    parent_id TEXT,
    -- The room as the server returned it (JSON of roomler_shared::model::Room).
    data TEXT NOT NULL,
    -- The newest room seq the user has read.
    read_seq INTEGER NOT NULL DEFAULT 0,
    -- Set once history was fetched back to the room's first message.
    history_complete INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE members (
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    -- The whole message as the server returned it, rendered HTML included.
    data TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_room_seq ON messages(room_id, seq);

CREATE VIRTUAL TABLE messages_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');

-- Operations waiting for the server, sent in id order.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('send', 'edit', 'delete', 'react', 'unreact')),
    room_id TEXT NOT NULL,
    message_id TEXT,
    client_id TEXT,
    body TEXT,
    reply_to TEXT,
    attachments TEXT NOT NULL DEFAULT '[]',
    emoji TEXT,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE files (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    mime TEXT NOT NULL,
    -- Path of the downloaded copy, set once complete.
    local_path TEXT,
    thumbnail BLOB
);
