-- mailgate schema, version 5: support's forgiving search (src/store/postgres/search.rs).
-- Both indexes are in the "C" collation, byte order like sled's keys, so LIKE 'prefix%'
-- is an index range whatever the database's collation, and a search can skip from one
-- address to the next (a loose index scan) instead of reading every message.

-- An address prefix: hanako@, hana.
CREATE INDEX messages_address_bytes ON messages ((address COLLATE "C"));
-- A domain: every address at example.jp begins 'pj.elpmaxe@' read backwards.
CREATE INDEX messages_address_reversed ON messages ((reverse(address) COLLATE "C"));
