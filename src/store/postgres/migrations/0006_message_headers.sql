-- A message's header block (about a kilobyte, kept for support's message view) in a
-- table of its own: the row in `messages` is rewritten at every step of delivery (a
-- claim, an attempt, the outcome), and a narrow row is less to rewrite, log and send.
CREATE TABLE message_headers (
    id      bytea PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    headers text NOT NULL
);
INSERT INTO message_headers (id, headers)
    SELECT id, record->>'headers' FROM messages WHERE record->>'headers' IS NOT NULL;
UPDATE messages SET record = record - 'headers' WHERE record ? 'headers';
