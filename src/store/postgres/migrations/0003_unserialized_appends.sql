-- mailgate schema, version 3: appends that never wait for one another.
--
-- Events: a writer inserts its event without a number, in the same statement as the
-- change it describes. The numbers are given afterwards by a short sequencer
-- transaction under the events advisory lock (see src/store/postgres/events.rs), in
-- insertion order, above every number given before; a reader sees an event only once
-- it has its number, so a feed cursor never passes an event committed late. Before
-- this, every append held one cluster-wide lock across its commit.
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE events ADD COLUMN pos bigserial;
ALTER TABLE events ADD PRIMARY KEY (pos);
CREATE UNIQUE INDEX events_seq ON events (seq);
CREATE INDEX events_unnumbered ON events (pos) WHERE seq IS NULL;

-- Counters: a counter is the sum of a few shard rows, so writers that count the same
-- thing at once (every delivered message counts "delivered") do not queue on one row
-- lock held across each commit.
ALTER TABLE counters ADD COLUMN shard smallint NOT NULL DEFAULT 0;
ALTER TABLE counters DROP CONSTRAINT counters_pkey;
ALTER TABLE counters ADD PRIMARY KEY (kind, label, shard);
-- The admin page's day tallies are read as one range of labels, bytewise.
CREATE INDEX counters_label_c ON counters (kind, label COLLATE "C");
