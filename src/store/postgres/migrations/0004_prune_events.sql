-- mailgate schema, version 4: what store.retention needs to forget old events and the
-- webhook deliveries that carried them (Events::prune_events in events.rs).

-- The lowest event a delivery is still pending for: the cut of the log stops there.
CREATE INDEX webhook_deliveries_pending_seq ON webhook_deliveries (event_seq)
    WHERE next_try_ms IS NOT NULL;
-- The finished deliveries of the events forgotten.
CREATE INDEX webhook_deliveries_finished_seq ON webhook_deliveries (event_seq)
    WHERE next_try_ms IS NULL;
