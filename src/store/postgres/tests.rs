//! The PostgreSQL store against a real server: the one `MAILGATE_TEST_PG_URL` names
//! (`bash scripts/test.sh` starts a throwaway cluster and sets it). Each test makes its
//! own database, dropped at the end even when the test fails, so tests run in parallel.
//! Several handles on one database stand in for several nodes: each has its own pool.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::domain::apikey::ApiKeyRecord;
use crate::domain::audit::AuditEntry;
use crate::domain::bounce::{BounceRecord, BounceSource, Suppression};
use crate::domain::{
    AccountRecord, Address, Event, FlowKind, FlowRecord, FlowState, MessageRecord, MessageStatus,
    Step,
};
use crate::store::limits::{LimitKey, Rule, Take};
use crate::store::{
    Backend, Bounces, Flows, Keys, Limits, Messages, Meta, OperatorKey, Operators, Store,
};

/// The typed façade over a node, for the generic conveniences (update_flow, settings).
fn store(pg: &Postgres) -> Store {
    Store::new(Arc::new(pg.clone()))
}

/// The server's URL, or a failure that says how to get one.
fn server_url() -> String {
    std::env::var("MAILGATE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "MAILGATE_TEST_PG_URL is not set: the PostgreSQL store tests need a server. \
             Run the tests with `bash scripts/test.sh`, which installs Debian's postgresql \
             when missing (scripts/install-test-peers.sh: apt-get install postgresql) and \
             starts a throwaway cluster for them."
        )
    })
}

/// `url` pointing at database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let cut = base
        .rfind('/')
        .filter(|&i| i > base.find("://").map_or(0, |s| s + 2));
    match cut {
        Some(i) => format!("{}/{name}{query}", &base[..i]),
        None => format!("{base}/{name}{query}"),
    }
}

fn settings(url: &str) -> PostgresSettings {
    PostgresSettings {
        url: url.to_string(),
        password: None,
        pool_size: 8,
        lease: Duration::from_secs(60),
        tls: PgTls::Disable,
    }
}

/// A database of its own for one test, dropped when the value goes.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let server = server_url();
        let name = format!("mailgate_test_{}", hex::encode(rand::random::<[u8; 8]>()));
        let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach MAILGATE_TEST_PG_URL ({server}): {e}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb {
            url: with_database(&server, &name),
            name,
        }
    }

    /// Another node's handle on this database (its own pool).
    async fn node(&self) -> Postgres {
        Postgres::connect(&settings(&self.url)).await.unwrap()
    }

    /// A migrated handle.
    async fn migrated(&self) -> Postgres {
        let pg = self.node().await;
        pg.migrate().await.unwrap();
        pg
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = server_url();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, so the cleanup gets a thread and a
        // runtime of its own; FORCE ends the pools' connections.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&server, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            })
        })
        .join();
    }
}

fn message(to: &str, created: u64) -> MessageRecord {
    MessageRecord::example(to, created)
}

fn flow(id: &str) -> FlowRecord {
    FlowRecord::issued(
        id.into(),
        FlowKind::Setup,
        Address::parse("a@example.jp").unwrap(),
        "ja".into(),
        1,
        2,
    )
}

#[tokio::test]
async fn migrating_twice_changes_nothing_the_second_time() {
    let db = TestDb::new().await;
    let pg = db.node().await;
    assert_eq!(pg.schema_version().await.unwrap(), 0);
    assert_eq!(pg.migrate().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(pg.migrate().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(pg.schema_version().await.unwrap(), SCHEMA_VERSION);
    let client = pg.client().await.unwrap();
    let rows: i64 = client
        .query_one("SELECT count(*) FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn two_nodes_migrating_at_once_both_come_up() {
    let db = TestDb::new().await;
    let (a, b) = (db.node().await, db.node().await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    assert_eq!(ra.unwrap(), SCHEMA_VERSION);
    assert_eq!(rb.unwrap(), SCHEMA_VERSION);
    assert_eq!(a.count_rows("messages").await.unwrap(), 0);
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_by_name() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    pg.client()
        .await
        .unwrap()
        .execute(
            "INSERT INTO schema_version (version, applied_ms) VALUES ($1, 0)",
            &[&(SCHEMA_VERSION + 998)],
        )
        .await
        .unwrap();
    for e in [
        pg.migrate().await.unwrap_err(),
        pg.schema_version().await.unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(
            text.contains(&format!("{}", SCHEMA_VERSION + 998)),
            "{text}"
        );
        assert!(text.contains("newer than this mailgate knows"), "{text}");
        assert!(text.contains("store.url"), "{text}");
    }
}

#[tokio::test]
async fn a_message_and_its_body_are_stored_and_a_final_record_drops_the_body() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut late = message("a@example.jp", 200);
    let mut early = message("a@example.jp", 100);
    let mut other = message("A@example.jp", 150);
    for (r, body) in [
        (&mut late, "late"),
        (&mut early, "early"),
        (&mut other, "other"),
    ] {
        let first = Event::new(Step::Queued, r.created_ms);
        pg.insert_message(r, body.as_bytes(), &first).await.unwrap();
    }
    let stored = pg.message(&early.id).await.unwrap().unwrap();
    assert_eq!(stored, early);
    assert_eq!(stored.timeline.len(), 1);
    assert_eq!(pg.body(&stored).await.unwrap().unwrap(), b"early");
    assert_eq!(
        pg.messages_for_address("a@example.jp").await.unwrap(),
        vec![late.id, early.id]
    );
    assert_eq!(
        pg.addresses_like("a@example.jp", 5).await.unwrap(),
        vec!["A@example.jp".to_string()]
    );
    let due: Vec<_> = pg.due_messages(150, 10).await.unwrap();
    assert_eq!(due, vec![(100, early.id), (150, other.id)]);
    assert_eq!(pg.next_due().await.unwrap(), Some(100));
    assert_eq!(
        pg.open_status_counts().await.unwrap().get("queued"),
        Some(&3)
    );

    pg.reschedule(&mut early, None).await.unwrap();
    early.status = MessageStatus::Delivered;
    early.push_event(Event::new(Step::Delivered, 120));
    pg.put_message(&mut early).await.unwrap();
    let stored = pg.message(&early.id).await.unwrap().unwrap();
    assert_eq!(stored.timeline.len(), 2);
    assert_eq!(stored.due_ms, None);
    assert_eq!(
        pg.body(&stored).await.unwrap(),
        None,
        "a final message keeps no body"
    );
    assert_eq!(
        pg.due_messages(150, 10).await.unwrap(),
        vec![(150, other.id)]
    );
    assert_eq!(pg.queue_entries().await.unwrap().len(), 2);
    assert_eq!(
        pg.message_status_counts().await.unwrap(),
        [("delivered", 1), ("queued", 2)].into_iter().collect()
    );
    assert_eq!(
        pg.open_status_counts().await.unwrap().get("delivered"),
        None
    );

    // A lease moved without rewriting the record still shows in the record.
    pg.move_queue_key(&other.id, 150, 9_000).await.unwrap();
    assert_eq!(
        pg.message(&other.id).await.unwrap().unwrap().due_ms,
        Some(9_000)
    );
    pg.drop_entry(9_000, &other.id).await.unwrap();
    assert_eq!(pg.message(&other.id).await.unwrap().unwrap().due_ms, None);
    assert_eq!(pg.next_due().await.unwrap(), Some(200));
    assert_eq!(pg.reclaim_space().await.unwrap(), 0);
}

#[tokio::test]
async fn the_header_block_is_kept_beside_the_hot_row_and_read_back_with_it() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut m = message("a@example.jp", 100);
    m.headers = Some("Subject: hi\r\nTo: a@example.jp\r\n".into());
    pg.insert_message(&mut m, b"body", &Event::new(Step::Queued, 100))
        .await
        .unwrap();
    // Every step rewrites the record; the header block is not in it.
    let mut stored = pg.message(&m.id).await.unwrap().unwrap();
    assert_eq!(stored.headers, m.headers);
    stored.status = MessageStatus::Delivered;
    stored.due_ms = None;
    stored.push_event(Event::new(Step::Delivered, 120));
    pg.put_message(&mut stored).await.unwrap();
    let client = pg.client().await.unwrap();
    let in_record: Option<String> = client
        .query_one(
            "SELECT record->>'headers' FROM messages WHERE id = $1",
            &[&m.id.as_bytes().as_slice()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_record, None, "the hot row carries no header block");
    let again = pg.message(&m.id).await.unwrap().unwrap();
    assert_eq!(again.headers, m.headers);
    assert_eq!(again.status, MessageStatus::Delivered);
    // Forgetting the message forgets its headers with it.
    assert_eq!(pg.prune_finished(1_000_000, 10).await.unwrap(), 1);
    let left: i64 = client
        .query_one("SELECT count(*) FROM message_headers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn open_messages_are_counted_from_the_queue_index_not_the_history() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    for i in 0..40u64 {
        let mut r = message("a@example.jp", i);
        pg.insert_message(&mut r, b"x", &Event::new(Step::Queued, i))
            .await
            .unwrap();
        if i % 4 != 0 {
            pg.reschedule(&mut r, None).await.unwrap();
            r.status = MessageStatus::Delivered;
            pg.put_message(&mut r).await.unwrap();
        }
    }
    assert_eq!(pg.open_message_count().await.unwrap(), 10);
    assert_eq!(
        pg.open_status_counts().await.unwrap().get("queued"),
        Some(&10)
    );
    // The plans may use the partial index (a table this small is scanned anyway, so
    // sequential scans are ruled out to see whether the index can answer).
    let client = pg.client().await.unwrap();
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    for sql in [
        "SELECT count(*) FROM messages WHERE due_ms IS NOT NULL",
        "SELECT status, count(*) FROM messages WHERE due_ms IS NOT NULL GROUP BY status",
    ] {
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN {sql}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("on messages_due") || plan.contains("using messages_due"),
            "{sql}:\n{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{sql}:\n{plan}");
    }
    client.batch_execute("RESET enable_seqscan").await.unwrap();
}

#[tokio::test]
async fn concurrent_claimers_on_four_nodes_never_get_the_same_message() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut ids = HashSet::new();
    for i in 0..500u64 {
        let mut r = message("a@example.jp", 100 + i);
        pg.insert_message(&mut r, b"x", &Event::new(Step::Queued, 100))
            .await
            .unwrap();
        ids.insert(r.id);
    }
    let lease_until = 1_000_000;
    let mut nodes = Vec::new();
    for _ in 0..4 {
        let node = db.node().await;
        nodes.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = node.claim_due(10_000, lease_until, 7).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                for c in batch {
                    let r = c.record.expect("a claimed message has its record");
                    assert_eq!(r.due_ms, Some(c.due_ms), "the record as it was claimed");
                    mine.push(c.id);
                }
            }
        }));
    }
    let mut claimed = Vec::new();
    let mut per_node = Vec::new();
    for n in nodes {
        let mine = n.await.unwrap();
        per_node.push(mine.len());
        claimed.extend(mine);
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 500, "claims per node: {per_node:?}");
    assert_eq!(unique, ids);
    // Under lease: nobody else gets them; after it, they come back (a dead node's work).
    assert!(
        pg.claim_due(999_999, 2_000_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = pg.claim_due(lease_until, 2_000_000, 1000).await.unwrap();
    assert_eq!(again.len(), 500);
    let stored = pg.message(&again[0].id).await.unwrap().unwrap();
    assert_eq!(stored.due_ms, Some(2_000_000), "column and record agree");
    assert_eq!(pg.due_messages(2_000_000, 1).await.unwrap()[0].0, 2_000_000);
}

#[tokio::test]
async fn three_hundred_concurrent_flow_updates_on_three_nodes_lose_nothing() {
    let db = TestDb::new().await;
    let a = db.migrated().await;
    let b = db.node().await;
    let c = db.node().await;
    a.insert_flow(&flow("x"), &[7; 32]).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let node = [&a, &b, &c][i as usize % 3].clone();
        tasks.push(tokio::spawn(async move {
            store(&node)
                .update_flow("x", |f| {
                    f.failures_ms.push(i);
                    f.failures_ms.len()
                })
                .await
                .unwrap()
                .unwrap()
                .1
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort();
    assert_eq!(
        seen,
        (1..=300).collect::<Vec<_>>(),
        "each update saw the one before"
    );
    let stored = a.flow("x").await.unwrap().unwrap();
    assert_eq!(stored.failures_ms.len(), 300);
    assert_eq!(
        a.flow_by_link_hash(&[7; 32]).await.unwrap().unwrap(),
        stored
    );
    assert!(
        store(&a)
            .update_flow("nope", |_| ())
            .await
            .unwrap()
            .is_none()
    );

    store(&a)
        .update_flow("x", |f| f.state = FlowState::Completed)
        .await
        .unwrap();
    assert_eq!(
        a.count_flows_in_state(FlowState::Completed).await.unwrap(),
        1
    );
    assert_eq!(a.count_flows_in_state(FlowState::Issued).await.unwrap(), 0);
    assert_eq!(
        a.swap_current_flow("a@example.jp", "x").await.unwrap(),
        None
    );
    assert_eq!(
        b.swap_current_flow("a@example.jp", "y").await.unwrap(),
        Some("x".into())
    );
    assert_eq!(
        a.current_flow_id("a@example.jp").await.unwrap(),
        Some("y".into())
    );
}

#[tokio::test]
async fn concurrent_swaps_of_the_current_flow_form_one_chain() {
    let db = TestDb::new().await;
    let a = db.migrated().await;
    let b = db.node().await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let id = format!("f{i}");
            let old = node.swap_current_flow("a@example.jp", &id).await.unwrap();
            (id, old)
        }));
    }
    let mut replaced = Vec::new();
    let mut firsts = 0;
    for t in tasks {
        match t.await.unwrap() {
            (_, None) => firsts += 1,
            (_, Some(old)) => replaced.push(old),
        }
    }
    // Every swap replaced the one before it: one saw nothing, and every flow but the
    // last is replaced exactly once.
    assert_eq!(firsts, 1);
    let last = a.current_flow_id("a@example.jp").await.unwrap().unwrap();
    replaced.push(last);
    replaced.sort();
    let mut all: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    all.sort();
    assert_eq!(replaced, all);
}

#[tokio::test]
async fn parallel_takes_on_two_nodes_never_let_more_than_max_through() {
    const RULE: Rule = Rule {
        max: 3,
        window_ms: 1000,
        lock_ms: 5000,
    };
    let db = TestDb::new().await;
    let a = db.migrated().await;
    let b = db.node().await;
    let key = LimitKey::new("test", &["a", "b"]);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..25 {
                if let Take::Allowed { .. } = node.limit_take(&key, RULE, 100).await.unwrap() {
                    allowed += 1;
                }
            }
            allowed
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap();
    }
    assert_eq!(allowed, 3);
    assert_eq!(
        a.limit_take(&key, RULE, 200).await.unwrap(),
        Take::Refused { until_ms: 5100 }
    );
    a.limit_refund(&key).await.unwrap();
    assert_eq!(
        a.limit_take(&key, RULE, 200).await.unwrap(),
        Take::Allowed { remaining: 0 }
    );
    a.limit_clear_prefix("test", "a").await.unwrap();
    assert_eq!(
        a.limit_take(&key, RULE, 100).await.unwrap(),
        Take::Allowed { remaining: 2 }
    );
    let other = LimitKey::new("test", &["ab", "b"]);
    a.limit_take(&other, RULE, 100).await.unwrap();
    a.limit_clear(&key).await.unwrap();
    assert_eq!(a.count_rows("limits").await.unwrap(), 1);
    assert_eq!(a.limit_prune(1000, 100_000).await.unwrap(), 1);
}

#[tokio::test]
async fn connection_slots_hold_the_cap_across_nodes_and_lapse_with_their_holder() {
    use crate::store::Limits;
    let db = TestDb::new().await;
    let nodes = [db.migrated().await, db.node().await, db.node().await];
    // Twelve takers on three nodes at once, for a cap of three.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let node = nodes[i % 3].clone();
        tasks.push(tokio::spawn(async move {
            node.take_connection_slot("example.jp", &format!("w{i}"), 3, 1_000, 0)
                .await
                .unwrap()
                .map(|slot| (slot, format!("w{i}")))
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        held.extend(t.await.unwrap());
    }
    held.sort();
    assert_eq!(
        held.iter().map(|(slot, _)| *slot).collect::<Vec<_>>(),
        vec![0, 1, 2],
        "{held:?}"
    );
    // Another destination has slots of its own.
    assert!(
        nodes[1]
            .take_connection_slot("example.com", "x", 3, 1_000, 0)
            .await
            .unwrap()
            .is_some()
    );
    // A slot given back is taken again.
    let (slot, holder) = &held[0];
    nodes[0]
        .release_connection_slot("example.jp", *slot, holder)
        .await
        .unwrap();
    assert_eq!(
        nodes[2]
            .take_connection_slot("example.jp", "late", 3, 1_000, 10)
            .await
            .unwrap(),
        Some(*slot)
    );
    // A renewed holder keeps its slot past the old end; the others' lapse.
    let (_, keeper) = &held[1];
    nodes[0]
        .renew_connection_slots(keeper, 5_000)
        .await
        .unwrap();
    let mut after_lapse = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        after_lapse.extend(
            node.take_connection_slot("example.jp", &format!("new{i}"), 3, 9_000, 2_000)
                .await
                .unwrap(),
        );
    }
    after_lapse.sort();
    let kept = held[1].0;
    let expected: Vec<u32> = (0..3).filter(|s| *s != kept).collect();
    assert_eq!(after_lapse, expected);
}

#[tokio::test]
async fn slots_taken_in_chunks_on_three_nodes_never_pass_the_limit() {
    let db = TestDb::new().await;
    let nodes = [db.migrated().await, db.node().await, db.node().await];
    let stores: Vec<Store> = nodes.iter().map(store).collect();
    let rule = Rule {
        max: 500,
        window_ms: 60_000,
        lock_ms: 0,
    };
    let key = LimitKey::new("api-key", &["app"]);
    let mut tasks = Vec::new();
    for i in 0..900 {
        let (s, key) = (stores[i % 3].clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            matches!(
                s.limit_take_chunked(&key, rule, 1_000).await.unwrap(),
                Take::Allowed { .. }
            )
        }));
    }
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap());
    }
    // Chunks of 5: never beyond the rule; at most the chunks still in hand unspent.
    assert!(allowed <= 500, "{allowed} let through for a limit of 500");
    assert!(allowed >= 400, "only {allowed} of 500 let through");
    // The next window opens again.
    assert!(matches!(
        stores[0]
            .limit_take_chunked(&key, rule, 61_000)
            .await
            .unwrap(),
        Take::Allowed { .. }
    ));
}

#[tokio::test]
async fn counters_add_up_across_concurrent_callers() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let pg = pg.clone();
        tasks.push(tokio::spawn(async move {
            pg.counter_add("deliveries", "delivered", 2).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    pg.counter_add("deliveries", "bounced", 1).await.unwrap();
    pg.counter_add("bounces", "userunknown", 1).await.unwrap();
    assert_eq!(
        pg.counters("deliveries").await.unwrap(),
        vec![("bounced".to_string(), 1), ("delivered".to_string(), 100)]
    );
}

#[tokio::test]
async fn a_window_of_dated_counters_is_read_and_older_days_are_forgotten() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    for (kind, label) in [
        ("day", "2026-11-30 delivered"),
        ("day", "2026-12-01 delivered"),
        ("day", "2026-12-02 bounced"),
        ("day_provider", "2026-12-01 docomo delivered"),
    ] {
        pg.counter_add(kind, label, 1).await.unwrap();
    }
    assert_eq!(
        pg.counters_between("day", "2026-12-01", "2026-12-02")
            .await
            .unwrap(),
        vec![("2026-12-01 delivered".to_string(), 1)]
    );
    assert_eq!(
        pg.forget_counters_before("day", "2026-12-02")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        pg.counters("day").await.unwrap(),
        vec![("2026-12-02 bounced".to_string(), 1)]
    );
    assert_eq!(pg.counters("day_provider").await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_other_records_round_trip() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;

    let bounce = BounceRecord {
        at_ms: 50,
        source: BounceSource::Listener,
        kind: Some("dsn".into()),
        authenticated: true,
        message_id: None,
        flow_id: None,
        address: Some("a@example.jp".into()),
        recipient_domain: None,
        action: None,
        status: None,
        permanent: true,
        reason: Some("userunknown".into()),
        diagnostic: None,
        remote_mta: None,
        sender_problem: false,
        effects: vec![],
    };
    pg.insert_bounce(&bounce, None).await.unwrap();
    // A complaint's event is written with its record.
    let told = Store::new_event(
        crate::domain::EventType::MessageComplaint,
        crate::domain::EventData::default(),
        10,
    );
    pg.insert_bounce(
        &BounceRecord {
            at_ms: 10,
            reason: None,
            ..bounce.clone()
        },
        Some(told.clone()),
    )
    .await
    .unwrap();
    let events = store(&pg).events_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, told.id);
    assert_eq!(pg.bounces_since(20).await.unwrap(), vec![bounce.clone()]);
    assert_eq!(pg.bounces_since(0).await.unwrap().len(), 2);
    assert_eq!(
        pg.bounce_reason_counts().await.unwrap(),
        [("undefined".to_string(), 1), ("userunknown".to_string(), 1)]
            .into_iter()
            .collect()
    );
    assert_eq!(
        pg.counters("bounces").await.unwrap(),
        vec![("undefined".to_string(), 1), ("userunknown".to_string(), 1)]
    );

    let entry = Suppression {
        address: "b@example.jp".into(),
        since_ms: 1,
        reason: "userunknown".into(),
        evidence: "550 no such user".into(),
        message_id: None,
    };
    pg.suppress(&entry, None).await.unwrap();
    assert_eq!(
        pg.suppression("b@example.jp").await.unwrap(),
        Some(entry.clone())
    );
    assert_eq!(pg.suppressions().await.unwrap(), vec![entry.clone()]);
    // Removed with its event, in one transaction; nothing to remove tells nothing.
    let s = store(&pg);
    assert_eq!(
        s.remove_suppression("b@example.jp", 5).await.unwrap(),
        Some(entry)
    );
    assert_eq!(s.remove_suppression("b@example.jp", 6).await.unwrap(), None);
    let told: Vec<_> = s
        .events_after(0, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == crate::domain::EventType::SuppressionRemoved)
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].data.address.as_deref(), Some("b@example.jp"));

    let key = ApiKeyRecord {
        name: "ci".into(),
        created_ms: 3,
        revoked_ms: None,
    };
    pg.api_key_put(&[9; 32], &key).await.unwrap();
    let got = pg.api_key_get(&[9; 32]).await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.created_ms), ("ci", 3));
    let all = pg.api_keys().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].0, all[0].1.name.as_str()),
        ([9; 32], key.name.as_str())
    );

    store(&pg).set_setting("verp_secret", &"abc").await.unwrap();
    store(&pg).set_setting("verp_secret", &"def").await.unwrap();
    assert_eq!(
        store(&pg).setting::<String>("verp_secret").await.unwrap(),
        Some("def".into())
    );
    assert_eq!(store(&pg).setting::<String>("missing").await.unwrap(), None);

    store(&pg)
        .operator_put(OperatorKey::Account, "aiko", &"hash-a")
        .await
        .unwrap();
    store(&pg)
        .operator_put(OperatorKey::Session, "d1", &"s1")
        .await
        .unwrap();
    store(&pg)
        .operator_put(OperatorKey::Session, "d0", &"s0")
        .await
        .unwrap();
    assert_eq!(
        store(&pg)
            .operator_get::<String>(OperatorKey::Account, "aiko")
            .await
            .unwrap(),
        Some("hash-a".into())
    );
    assert_eq!(
        store(&pg)
            .operator_entries::<String>(OperatorKey::Session)
            .await
            .unwrap(),
        vec![("d0".into(), "s0".into()), ("d1".into(), "s1".into())]
    );
    pg.operator_remove(OperatorKey::Session, "d0")
        .await
        .unwrap();
    assert_eq!(
        store(&pg)
            .operator_all::<String>(OperatorKey::Session)
            .await
            .unwrap(),
        vec!["s1".to_string()]
    );

    for (at_ms, action) in [(5, "b"), (9, "c"), (1, "a")] {
        pg.audit_append(&AuditEntry {
            at_ms,
            who: "aiko".into(),
            action: action.into(),
            target: String::new(),
            note: None,
        })
        .await
        .unwrap();
    }
    let recent: Vec<_> = pg
        .audit_recent(2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(recent, vec!["c", "b"]);

    let account = AccountRecord {
        address: Address::parse("a@example.jp").unwrap(),
        password_hash: "$argon2id$…".into(),
        name: None,
        locale: "ja".into(),
        updated_ms: 4,
    };
    pg.put_account(&account).await.unwrap();
    assert_eq!(pg.account("a@example.jp").await.unwrap(), Some(account));

    pg.check_health().await.unwrap();
    pg.flush(None).await.unwrap();
    pg.flush_blocking().unwrap();
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_its_password_redacted() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://mailgate:s3cret-pw@127.0.0.1:{port}/mailgate");
    let e = Postgres::connect(&settings(&url)).await.unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(
        text.contains(&format!(
            "store.url = postgres://mailgate:***@127.0.0.1:{port}/mailgate"
        )),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
    assert!(!format!("{e:?}").contains("s3cret-pw"), "{e:?}");
}

#[tokio::test]
async fn a_missing_database_is_named() {
    let url = with_database(&server_url(), "mailgate_no_such_database");
    let e = Postgres::connect(&settings(&url)).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("the database does not exist"), "{text}");
    assert!(text.contains("store.url"), "{text}");
}

/// `MAILGATE_TEST_PG_URL`'s server as `user:password`, on database `postgres`.
fn as_user(user_password: &str) -> String {
    let config: tokio_postgres::Config = server_url().parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{user_password}@{host}:{port}/postgres")
}

#[tokio::test]
async fn a_wrong_password_is_named_and_not_shown() {
    // scripts/test.sh makes the role mailgate_pw log in with a password (scram-sha-256).
    let url = as_user("mailgate_pw:not-the-password");
    let e = Postgres::connect(&settings(&url)).await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("wrong password"),
        "{text} (this test needs the role mailgate_pw that scripts/test.sh creates)"
    );
    assert!(!text.contains("not-the-password"), "{text}");
}

#[tokio::test]
async fn tls_required_of_a_server_without_it_is_named() {
    let s = PostgresSettings {
        tls: PgTls::Require,
        ..settings(&server_url())
    };
    let e = Postgres::connect(&s).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("store.tls"), "{text}");
}

#[test]
fn passwords_are_redacted_in_every_url_form() {
    assert_eq!(
        redact_url("postgres://u:p%40ss@db.example.jp:5432/mg"),
        "postgres://u:***@db.example.jp:5432/mg"
    );
    assert_eq!(
        redact_url("postgresql://u@db/mg?password=x&sslmode=require"),
        "postgresql://u@db/mg?password=***&sslmode=require"
    );
    assert_eq!(
        redact_url("host=db user=u password='a b' dbname=mg"),
        "host=db user=u password=*** dbname=mg"
    );
    assert_eq!(
        redact_url("postgres://u@127.0.0.1/mg"),
        "postgres://u@127.0.0.1/mg"
    );
    let s = PostgresSettings {
        password: Some("topsecret".to_string().into()),
        ..settings("postgres://u:inurl@h/mg")
    };
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("topsecret") && !debug.contains("inurl"),
        "{debug}"
    );
}

#[tokio::test]
async fn retention_forgets_old_finished_messages_and_bounces_only() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut old_done = message("a@example.jp", 1_000);
    let mut old_open = message("a@example.jp", 1_001);
    let mut new_done = message("a@example.jp", 9_000);
    for r in [&mut old_done, &mut old_open, &mut new_done] {
        pg.insert_message(r, b"raw", &Event::new(Step::Queued, r.created_ms))
            .await
            .unwrap();
    }
    for r in [&mut old_done, &mut new_done] {
        r.status = MessageStatus::Delivered;
        pg.reschedule(r, None).await.unwrap();
        pg.put_message(r).await.unwrap();
    }
    assert_eq!(pg.prune_finished(5_000, 100).await.unwrap(), 1);
    assert!(pg.message(&old_done.id).await.unwrap().is_none());
    assert!(pg.message(&old_open.id).await.unwrap().is_some());
    assert!(pg.message(&new_done.id).await.unwrap().is_some());
    assert_eq!(pg.prune_finished(5_000, 100).await.unwrap(), 0);
    assert_eq!(pg.prune_bounces(5_000).await.unwrap(), 0);
}

#[tokio::test]
async fn retention_forgets_old_events_from_the_start_of_the_log() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    crate::store::conformance::old_events_go_from_the_start_of_the_log(&store(&pg)).await;
}

#[tokio::test]
async fn events_appended_on_three_nodes_at_once_are_numbered_without_gaps() {
    use crate::domain::{EventData, EventType};
    let db = TestDb::new().await;
    let nodes = [db.migrated().await, db.node().await, db.node().await];
    let mut tasks = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let s = store(node);
        tasks.push(tokio::spawn(async move {
            for j in 0..20 {
                s.record_event(
                    EventType::FlowMailed,
                    EventData::default(),
                    (i * 100 + j) as u64,
                )
                .await
                .unwrap();
            }
        }));
    }
    // A reader pages along while they write: its cursor never passes a number that
    // shows up later.
    let reader = store(&nodes[0]);
    let mut seen = Vec::new();
    let mut after = 0;
    while seen.len() < 60 {
        for e in reader.events_after(after, 7).await.unwrap() {
            assert_eq!(e.seq, after + 1, "a gap after {after}");
            after = e.seq;
            seen.push(e);
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(reader.last_event_seq().await.unwrap(), 60);
    let one = &seen[17];
    assert_eq!(
        reader.event_by_id(&one.id).await.unwrap().as_ref(),
        Some(one)
    );
}

#[tokio::test]
async fn an_event_committed_late_is_numbered_after_the_cursor_not_skipped() {
    use crate::domain::{EventData, EventType};
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let s = store(&pg);
    // A writer whose transaction is still open when a later one commits.
    let mut slow = pg.client().await.unwrap();
    let slow = slow.transaction().await.unwrap();
    let late = Store::new_event(EventType::FlowMailed, EventData::default(), 1);
    slow.execute(
        &super::events::insert_event_sql(1, 2),
        &[&late.id, &super::encode("events", &late).unwrap()],
    )
    .await
    .unwrap();
    let first = s
        .record_event(EventType::FlowOpened, EventData::default(), 2)
        .await
        .unwrap();
    let seen = s.events_after(0, 10).await.unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].id.as_str(), seen[0].seq), (first.id.as_str(), 1));
    slow.commit().await.unwrap();
    let next = s.events_after(1, 10).await.unwrap();
    assert_eq!(next.len(), 1, "the late event was skipped: {next:?}");
    assert_eq!((next[0].id.as_str(), next[0].seq), (late.id.as_str(), 2));
}

#[tokio::test]
async fn a_finished_message_its_event_and_its_count_are_written_together() {
    use crate::domain::{EventData, EventType};
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let s = store(&pg);
    let mut r = message("a@example.jp", 100);
    pg.insert_message(&mut r, b"body", &Event::new(Step::Queued, 100))
        .await
        .unwrap();
    r.status = MessageStatus::Delivered;
    r.push_event(Event::new(Step::Delivered, 120));
    let told = Store::new_event(EventType::MessageDelivered, EventData::of_message(&r), 120);
    let tells = crate::store::Tells {
        event: Some(told.clone()),
        counts: vec![("deliveries", "delivered".into())],
    };
    s.write_message_change(&mut r, None, tells).await.unwrap();
    let stored = pg.message(&r.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.due_ms),
        (MessageStatus::Delivered, None)
    );
    assert_eq!(pg.body(&stored).await.unwrap(), None);
    assert_eq!(pg.next_due().await.unwrap(), None);
    let events = s.events_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].id.as_str(), events[0].seq),
        (told.id.as_str(), 1)
    );
    assert_eq!(
        pg.counters("deliveries").await.unwrap(),
        vec![("delivered".to_string(), 1)]
    );
}

#[tokio::test]
async fn a_change_whose_event_cannot_be_written_is_not_written_either() {
    use crate::domain::{EventData, EventType};
    use crate::store::Tells;
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let s = store(&pg);
    let taken = s
        .record_event(EventType::FlowMailed, EventData::default(), 1)
        .await
        .unwrap();
    // An event whose id is already in the log makes its insert fail.
    let clash = || Tells {
        event: Some(taken.clone()),
        counts: vec![("flows", "completed".into())],
    };
    let f = flow("f1");
    pg.insert_flow(&f, &[7; 32]).await.unwrap();
    let changed = s
        .update_flow_telling("f1", |f| {
            f.state = FlowState::Completed;
            ((), clash())
        })
        .await;
    assert!(changed.is_err(), "{changed:?}");
    assert_eq!(
        pg.flow("f1").await.unwrap().unwrap().state,
        FlowState::Issued
    );
    let mut m = message("a@example.jp", 100);
    pg.insert_message(&mut m, b"body", &Event::new(Step::Queued, 100))
        .await
        .unwrap();
    let mut delivered = m.clone();
    delivered.status = MessageStatus::Delivered;
    assert!(
        s.write_message_change(&mut delivered, None, clash())
            .await
            .is_err()
    );
    let stored = pg.message(&m.id).await.unwrap().unwrap();
    assert_eq!(stored.status, MessageStatus::Queued);
    assert_eq!(pg.body(&stored).await.unwrap().unwrap(), b"body");
    assert_eq!(pg.counters("flows").await.unwrap(), vec![]);
    assert_eq!(s.events_after(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_due_delivery_is_claimed_by_one_node_only_until_its_lease_ends() {
    use crate::domain::{DeliveryState, EventType, WebhookDelivery};
    use crate::store::Events;
    let db = TestDb::new().await;
    let (a, b) = (db.migrated().await, db.node().await);
    let d = |seq: u64, next: Option<u64>| WebhookDelivery {
        endpoint: "https://app.example.jp/hooks".into(),
        event_id: format!("evt_{seq}"),
        event_seq: seq,
        event_type: EventType::FlowCompleted,
        state: if next.is_some() {
            DeliveryState::Pending
        } else {
            DeliveryState::Delivered
        },
        attempts: 0,
        next_try_ms: next,
        created_ms: 1,
        last_try_ms: None,
        last_status: None,
        last_error: None,
    };
    a.put_delivery(&d(1, Some(100))).await.unwrap();
    a.put_delivery(&d(2, Some(100))).await.unwrap();
    a.put_delivery(&d(3, None)).await.unwrap();
    let (ca, cb) = tokio::join!(
        a.claim_deliveries(100, 1_000, 10),
        b.claim_deliveries(100, 1_000, 10)
    );
    let mut claimed: Vec<u64> = ca
        .unwrap()
        .into_iter()
        .chain(cb.unwrap())
        .map(|d| {
            assert_eq!(d.next_try_ms, Some(1_000));
            d.event_seq
        })
        .collect();
    claimed.sort();
    assert_eq!(claimed, [1, 2], "each once, the delivered one never");
    assert!(b.claim_deliveries(999, 2_000, 10).await.unwrap().is_empty());
    assert_eq!(b.claim_deliveries(1_000, 2_000, 10).await.unwrap().len(), 2);
    let recent = a
        .recent_deliveries("https://app.example.jp/hooks", 2)
        .await
        .unwrap();
    assert_eq!(
        recent.iter().map(|d| d.event_seq).collect::<Vec<_>>(),
        [3, 2]
    );
}

#[tokio::test]
async fn flows_are_listed_by_address_and_state_newest_first() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut older = flow("f1");
    older.created_ms = 1;
    let mut newer = flow("f2");
    newer.created_ms = 2;
    newer.state = FlowState::Completed;
    pg.insert_flow(&older, &[1; 32]).await.unwrap();
    pg.insert_flow(&newer, &[2; 32]).await.unwrap();
    let address = older.address.to_string();
    let ids = |v: Vec<FlowRecord>| v.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(
        ids(pg.list_flows(Some(&address), &[], 10).await.unwrap()),
        ["f2", "f1"]
    );
    assert_eq!(
        ids(pg.list_flows(None, &[FlowState::Issued], 10).await.unwrap()),
        ["f1"]
    );
    assert!(
        pg.list_flows(Some("nobody@example.jp"), &[], 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_nul_from_a_remote_reply_does_not_make_a_record_unwritable() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut r = message("a@example.jp", 1);
    pg.insert_message(&mut r, b"raw", &Event::new(Step::Queued, 1))
        .await
        .unwrap();
    r.last_reply = Some("550 no\0such user".into());
    pg.put_message(&mut r).await.unwrap();
    let stored = pg.message(&r.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_reply.as_deref(),
        Some("550 no\u{fffd}such user")
    );
}

#[tokio::test]
async fn a_domain_and_a_prefix_list_each_address_once_from_the_indexes() {
    use crate::domain::AddressPattern;
    use crate::store::Search;
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    for (i, to) in [
        "hanako@example.jp",
        "hanako@example.jp",
        "hanae@example.jp",
        "hanako@sub.example.jp",
        "hana_x@other.jp",
        "taro@example.jp",
    ]
    .iter()
    .enumerate()
    {
        let mut r = message(to, 100 + i as u64);
        pg.insert_message(&mut r, b"x", &Event::new(Step::Queued, 100))
            .await
            .unwrap();
    }
    let found = |q: &str, limit| {
        let pg = pg.clone();
        let p = AddressPattern::parse(q).unwrap();
        async move { pg.addresses_matching(&p, limit).await.unwrap() }
    };
    assert_eq!(
        found("@example.jp", 10).await,
        ["hanae@example.jp", "hanako@example.jp", "taro@example.jp"]
    );
    assert_eq!(
        found("hanako@", 10).await,
        ["hanako@example.jp", "hanako@sub.example.jp"]
    );
    assert_eq!(
        found("hana", 2).await,
        ["hana_x@other.jp", "hanae@example.jp"]
    );
    // LIKE's wildcards in what was typed are plain characters.
    assert_eq!(found("hana_", 10).await, ["hana_x@other.jp"]);
    assert!(found("@nowhere.jp", 10).await.is_empty());
}

#[tokio::test]
async fn concurrent_writes_share_commits_and_each_gets_its_own_answer() {
    use crate::domain::{EventData, EventType};
    use crate::store::Tells;
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let s = store(&pg);
    let taken = s
        .record_event(EventType::FlowMailed, EventData::default(), 1)
        .await
        .unwrap();
    // 200 enqueues at once: every one stored with its bytes and header block.
    let inserts = (0..200).map(|i| {
        let pg = pg.clone();
        tokio::spawn(async move {
            let mut r = message(&format!("u{i}@example.jp"), 100 + i);
            r.headers = Some(format!("Subject: {i}\r\n"));
            pg.insert_message(
                &mut r,
                format!("body {i}").as_bytes(),
                &Event::new(Step::Queued, 100),
            )
            .await
            .unwrap();
            r
        })
    });
    let mut records = Vec::new();
    for t in inserts {
        records.push(t.await.unwrap());
    }
    for r in &records {
        let stored = pg.message(&r.id).await.unwrap().unwrap();
        assert_eq!(stored.headers, r.headers);
        let i = &r.to.to_string()[1..r.to.to_string().find('@').unwrap()];
        assert_eq!(
            pg.body(&stored).await.unwrap().unwrap(),
            format!("body {i}").as_bytes()
        );
    }
    // All delivered at once, one of them telling an event that cannot be written: it
    // fails alone, and the counts of the others add up.
    let bad = records[7].id;
    let finishes = records.into_iter().map(|mut r| {
        let (s, taken) = (s.clone(), taken.clone());
        tokio::spawn(async move {
            r.status = MessageStatus::Delivered;
            let event = if r.id == bad {
                taken
            } else {
                Store::new_event(EventType::MessageDelivered, EventData::of_message(&r), 120)
            };
            let tells = Tells {
                event: Some(event),
                counts: vec![("deliveries", "delivered".into())],
            };
            (r.id, s.write_message_change(&mut r, None, tells).await)
        })
    });
    for t in finishes {
        let (id, result) = t.await.unwrap();
        assert_eq!(result.is_err(), id == bad, "{id}: {result:?}");
    }
    assert_eq!(
        pg.counters("deliveries").await.unwrap(),
        vec![("delivered".to_string(), 199)]
    );
    assert_eq!(s.events_after(0, 500).await.unwrap().len(), 200);
    assert_eq!(
        pg.message(&bad).await.unwrap().unwrap().status,
        MessageStatus::Queued
    );
    assert_eq!(pg.count_rows("message_bodies").await.unwrap(), 1);
}

#[tokio::test]
async fn two_changes_of_one_message_in_one_batch_keep_their_order() {
    let db = TestDb::new().await;
    let pg = db.migrated().await;
    let mut r = message("a@example.jp", 100);
    pg.insert_message(&mut r, b"body", &Event::new(Step::Queued, 100))
        .await
        .unwrap();
    let mut first = r.clone();
    first.status = MessageStatus::Sending;
    let mut second = r.clone();
    second.status = MessageStatus::Delivered;
    let changes = [
        messages::Change::new(&first, Default::default()).unwrap(),
        messages::Change::new(&second, Default::default()).unwrap(),
    ];
    pg.write_changes(&changes).await.unwrap();
    assert_eq!(
        pg.message(&r.id).await.unwrap().unwrap().status,
        MessageStatus::Delivered
    );
}
