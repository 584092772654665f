-- mailgate schema, version 7: no foreign key from message_headers to messages.
-- The key check locked the new message's row (FOR KEY SHARE) at every enqueue, a
-- lookup and a WAL record per message on the hottest write. Header blocks are written
-- only with their message (Messages::insert_message) and forgotten with it
-- (Messages::prune_finished deletes both in one statement), so the cascade the key
-- gave is done there instead.
ALTER TABLE message_headers DROP CONSTRAINT message_headers_id_fkey;
