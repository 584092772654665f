-- mailgate schema, version 1. Records are the same serde JSON the sled store writes
-- (jsonb), beside the columns that are searched or ordered on. Applied once, in one
-- transaction, under the migration advisory lock (see src/store/postgres/mod.rs).

-- Messages: the hot queue table stays narrow; the bytes live in message_bodies.
-- due_ms mirrors record->'due_ms' at every write: non-null while the message is queued.
CREATE TABLE messages (
    id         bytea PRIMARY KEY,
    address    text   NOT NULL,
    created_ms bigint NOT NULL,
    status     text   NOT NULL,
    due_ms     bigint,
    record     jsonb  NOT NULL
);
-- The queue: only open messages, in due order; status rides along so the open messages'
-- counts per status for /metrics are read from the index, not the history.
CREATE INDEX messages_due ON messages (due_ms) INCLUDE (status) WHERE due_ms IS NOT NULL;
CREATE INDEX messages_address ON messages (address, created_ms);
-- Support's "did you mean": the same address in another case.
CREATE INDEX messages_address_lower ON messages (lower(address));

CREATE TABLE message_bodies (
    id   bytea PRIMARY KEY,
    body bytea NOT NULL
);

CREATE TABLE flows (
    id     text PRIMARY KEY,
    state  text  NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX flows_state ON flows (state);

-- SHA-256 of a link token -> its flow.
CREATE TABLE link_tokens (
    hash    bytea PRIMARY KEY,
    flow_id text NOT NULL
);

-- The newest flow of each address.
CREATE TABLE current_flows (
    address text PRIMARY KEY,
    flow_id text NOT NULL
);

CREATE TABLE accounts (
    address text PRIMARY KEY,
    record  jsonb NOT NULL
);

CREATE TABLE suppression (
    address text PRIMARY KEY,
    record  jsonb NOT NULL
);

CREATE TABLE bounces (
    seq    bigserial PRIMARY KEY,
    at_ms  bigint NOT NULL,
    record jsonb  NOT NULL
);
CREATE INDEX bounces_at ON bounces (at_ms, seq);

-- The generic keyed store of operator accounts and sessions: kind prefix + id, as in sled.
CREATE TABLE operators (
    key    bytea PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE api_keys (
    hash   bytea PRIMARY KEY,
    record jsonb NOT NULL
);

CREATE TABLE audit (
    seq    bigserial PRIMARY KEY,
    at_ms  bigint NOT NULL,
    record jsonb  NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms, seq);

-- Settings the program keeps for itself (the VERP secret, …).
CREATE TABLE settings (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);

-- Monotonic counters for /metrics, by kind and label.
CREATE TABLE counters (
    kind  text   NOT NULL,
    label text   NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (kind, label)
);

-- Rate-limit windows, one row per key (scope NUL subject, the bytes sled uses).
CREATE TABLE limits (
    key           bytea PRIMARY KEY,
    start_ms      bigint  NOT NULL,
    count         integer NOT NULL,
    shut_until_ms bigint  NOT NULL
);

-- Connection slots to one destination domain, held by a node until until_ms: the
-- cluster-wide per-domain connection cap.
CREATE TABLE domain_slots (
    domain   text   NOT NULL,
    node     text   NOT NULL,
    slot     integer NOT NULL,
    until_ms bigint NOT NULL,
    PRIMARY KEY (domain, slot)
);
CREATE INDEX domain_slots_node ON domain_slots (node);
