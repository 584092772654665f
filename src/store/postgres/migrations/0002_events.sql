-- mailgate schema, version 2: the application's event log and the webhook deliveries
-- that carry it (see src/store/postgres/events.rs).

-- seq is given under the events advisory lock, so numbers are committed in order and
-- a reader's cursor never passes one committed late.
CREATE TABLE events (
    seq    bigint PRIMARY KEY,
    id     text   NOT NULL UNIQUE,
    record jsonb  NOT NULL
);

-- next_try_ms mirrors record->'next_try_ms' while the delivery is pending, else null.
CREATE TABLE webhook_deliveries (
    endpoint    text   NOT NULL,
    event_seq   bigint NOT NULL,
    next_try_ms bigint,
    record      jsonb  NOT NULL,
    PRIMARY KEY (endpoint, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_try_ms)
    WHERE next_try_ms IS NOT NULL;

-- GET /api/v1/flows?address= and the expiry sweep.
CREATE INDEX flows_address ON flows ((record->>'address'));
