-- mailgate schema, version 8: a message's bytes compressed with lz4, not pglz.
-- A signed message of a few kilobytes is compressed when it is stored (TOAST), and
-- pglz was the largest single cost of an enqueue in the database (a profile of the
-- delivery benchmark: about a tenth of PostgreSQL's CPU); lz4 does the same work
-- several times faster. New rows only; rows stored before keep pglz and read as before.
-- A server built without lz4 refuses the method: it keeps pglz.
DO $$
BEGIN
    ALTER TABLE message_bodies ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: message bytes stay compressed with pglz';
END $$;
