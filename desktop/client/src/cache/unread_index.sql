-- Schema version 2: unread counts read only the index, not every message row.
CREATE INDEX messages_room_seq_live ON messages(room_id, seq) WHERE deleted = 0;
