//! Several `mailgate serve` nodes on one PostgreSQL database, as an organisation runs
//! them behind a load balancer: work is shared without sending anything twice, a
//! killed node's mail is delivered by the others once its lease ends, and a person's
//! journey may touch every node. These run whatever `MAILGATE_TEST_BACKEND` says: they
//! need the test server the script starts.

use std::collections::HashMap;

use serde_json::Value;

use crate::journey::{Browser, PASSWORD, code_in, token_in, wait_for_code, wait_for_mail};
use crate::support::{
    Instance, Server, Sink, TestDatabase, dsn, parse_capture, relay_config, smtp_send, wait_for,
};

/// Nodes on one fresh database, started at the same moment (one migrates, the others
/// wait on the migration lock), each with `extra` as its configuration.
struct Cluster {
    nodes: Vec<(Instance, Server)>,
    key: String,
    _db: TestDatabase,
}

impl Cluster {
    fn start(n: usize, extra: impl Fn(usize) -> String) -> Cluster {
        Cluster::start_with_lease(n, "60s", extra)
    }

    /// As [`Cluster::start`], with claims that last `lease` (`store.lease`).
    fn start_with_lease(n: usize, lease: &str, extra: impl Fn(usize) -> String) -> Cluster {
        let db = TestDatabase::create();
        let instances: Vec<Instance> = (0..n)
            .map(|i| {
                let inst = Instance::with_url(&extra(i), Some(&db.url));
                let text = std::fs::read_to_string(&inst.config_path).unwrap();
                let text = text.replace(
                    "pool_size = 4\n",
                    &format!("pool_size = 4\nlease = \"{lease}\"\n"),
                );
                std::fs::write(&inst.config_path, text).unwrap();
                inst
            })
            .collect();
        let servers: Vec<Server> = std::thread::scope(|s| {
            let started: Vec<_> = instances.iter().map(|i| s.spawn(|| i.serve())).collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let key = instances[0].api_key();
        Cluster {
            nodes: instances.into_iter().zip(servers).collect(),
            key,
            _db: db,
        }
    }

    /// Messages per status and due state in the database, for a failure's message.
    fn statuses(&self) -> String {
        let out = std::process::Command::new("psql")
            .args(["-X", "-A", "-t", &self._db.url, "-c"])
            .arg(
                "SELECT status, due_ms IS NULL, (due_ms - extract(epoch from now())*1000)::bigint / 1000, count(*) \
                 FROM messages GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 12",
            )
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).replace('\n', "; "))
            .unwrap_or_default()
    }

    /// The last lines node `i` logged (warnings and errors first), for a failure.
    fn warnings(&self, i: usize) -> String {
        let log = self.server(i).log_text();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panic"))
            .collect();
        let all: Vec<&str> = log.lines().collect();
        format!(
            "{}\n-- last lines:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n"),
            all[all.len().saturating_sub(8)..].join("\n")
        )
    }

    fn server(&self, i: usize) -> &Server {
        &self.nodes[i].1
    }

    fn inst(&self, i: usize) -> &Instance {
        &self.nodes[i].0
    }

    /// Posts `count` notices through the API, spread over the live nodes by several
    /// clients at once; returns the ids acknowledged (202).
    fn send_notices(&self, count: usize, live: &[usize], prefix: &str) -> Vec<String> {
        let clients = 6;
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    s.spawn(move || {
                        let http = reqwest::blocking::Client::new();
                        let mut ids = Vec::new();
                        for i in (c..count).step_by(clients) {
                            let node = live[i % live.len()];
                            let r = http
                                .post(self.server(node).url("/api/v1/messages"))
                                .bearer_auth(&self.key)
                                .json(&serde_json::json!({
                                    "to": format!("{prefix}{i}@example.jp"),
                                    "template": "notice", "locale": "en",
                                    "vars": {"subject": "Clinic hours", "body": "We open at nine."}
                                }))
                                .send();
                            let Ok(r) = r else { continue };
                            if r.status().as_u16() == 202 {
                                let v: Value = r.json().unwrap();
                                ids.push(v["message_id"].as_str().unwrap().to_string());
                            }
                        }
                        ids
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        })
    }
}

/// How many times the sink received each message id (from the VERP return path).
fn arrivals(sink: &Sink, ids: &[String]) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for capture in sink.messages() {
        let mail_from = parse_capture(&capture).mail_args;
        if let Some(id) = ids.iter().find(|id| mail_from.contains(id.as_str())) {
            *seen.entry(id.clone()).or_default() += 1;
        }
    }
    seen
}

#[test]
fn three_live_nodes_never_send_a_message_twice() {
    let sink = Sink::start(&[]);
    let cluster = Cluster::start(3, |_| relay_config(sink.port, "\"1s\""));
    let ids = cluster.send_notices(2_000, &[0, 1, 2], "live");
    assert_eq!(ids.len(), 2_000, "every message is acknowledged");
    assert!(
        wait_for(240, || sink.count() >= 2_000),
        "{} of 2,000 arrived",
        sink.count()
    );
    for i in 0..3 {
        let out = cluster.inst(i).run(&["queue", "status", "--json"]);
        assert!(
            out.status.success(),
            "node {i}: queue status failed: {}\nits log: {}",
            String::from_utf8_lossy(&out.stderr),
            cluster.warnings(i)
        );
    }
    let seen = arrivals(&sink, &ids);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(seen.len(), 2_000, "every message arrived");
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(sink.count(), 2_000);
}

/// A TCP relay in front of a sink that counts the connections open through it at
/// once: the receiving side of `delivery.max_connections_per_domain`.
struct ConnectionCounter {
    port: u16,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ConnectionCounter {
    fn start(to_port: u16) -> ConnectionCounter {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(AtomicUsize::new(0));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let m = most.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", to_port)) else {
                    continue;
                };
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                // The connection ends for the count before mailgate can know it ended
                // (and give its slot back): when the sink's reply to QUIT passes through
                // here, before it is forwarded; else when mailgate closes its side.
                let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let end = {
                    let (open, ended) = (open.clone(), ended.clone());
                    move || {
                        if !ended.swap(true, Ordering::SeqCst) {
                            open.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                };
                let end_too = end.clone();
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_in, &mut s_out);
                    end_too();
                    let _ = s_out.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let (mut s_in, mut c_out) = (server, client);
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        if chunk.starts_with(b"221 ") || chunk.windows(5).any(|w| w == b"\n221 ") {
                            end();
                        }
                        if c_out.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        ConnectionCounter { port, most }
    }

    /// The most connections that were open at once.
    fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn the_cap_on_connections_to_a_domain_counts_every_nodes_connections() {
    let sink = Sink::start(&[]);
    let counter = ConnectionCounter::start(sink.port);
    // Each node alone may open two; short connections make nodes open new ones often.
    let cluster = Cluster::start(3, |_| {
        relay_config(counter.port, "\"1s\"").replace(
            "[inbound]",
            "max_connections_per_domain = 2\nmessages_per_connection = 10\n[inbound]",
        )
    });
    let ids = cluster.send_notices(600, &[0, 1, 2], "cap");
    assert_eq!(ids.len(), 600, "every message is acknowledged");
    // Counted from complete captures: the sink writes a capture while it receives it.
    assert!(
        wait_for(240, || arrivals(&sink, &ids).len() >= 600),
        "{} of 600 arrived; {}",
        arrivals(&sink, &ids).len(),
        cluster.statuses()
    );
    println!("most connections open at once: {}", counter.most());
    assert!(
        counter.most() <= 2,
        "{} connections were open at once for a cluster cap of 2",
        counter.most()
    );
}

#[test]
fn a_node_killed_mid_delivery_loses_nothing_the_others_deliver_its_claims() {
    let sink = Sink::start(&[]);
    // A short lease, so the killed node's claims come back within the test.
    let cluster = Cluster::start_with_lease(3, "3s", |_| relay_config(sink.port, "\"1s\""));
    // Node 1 is killed while the messages are still coming in and going out; what it
    // acknowledged before it died must arrive all the same.
    let (ids, at_kill) = std::thread::scope(|s| {
        let sending = s.spawn(|| cluster.send_notices(3_000, &[0, 1, 2], "kill"));
        assert!(
            wait_for(60, || sink.count() >= 500),
            "delivery did not start"
        );
        let pid = cluster.server(1).child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        assert!(killed.unwrap().success(), "kill -KILL {pid}");
        let at_kill = sink.count();
        (sending.join().unwrap(), at_kill)
    });
    assert!(ids.len() > 2_000, "only {} acknowledged", ids.len());
    assert!(
        wait_for(300, || arrivals(&sink, &ids).len() == ids.len()),
        "{} of {} acknowledged messages arrived; in the database: {}\nnode 0 warned: {}\nnode 2 warned: {}",
        arrivals(&sink, &ids).len(),
        ids.len(),
        cluster.statuses(),
        cluster.warnings(0),
        cluster.warnings(2)
    );
    let seen = arrivals(&sink, &ids);
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!(
        "killed node 1 at {at_kill} arrivals; {} acknowledged, all arrived; \
         duplicates (its mail in flight): {duplicates}",
        ids.len()
    );
    // Only what the killed node held can go twice: at most its connections' batches.
    assert!(duplicates <= 200, "{duplicates} duplicates");
}

#[test]
fn a_journey_crosses_three_nodes_and_racing_codes_give_one_success() {
    let shared = tempfile::tempdir().unwrap();
    let outbox = shared.path().join("outbox");
    let cluster = Cluster::start(3, |_| {
        format!(
            "[delivery]\nmode = \"outbox\"\noutbox_dir = \"{}\"\n",
            outbox.display()
        )
    });
    let to = "tabi@example.jp";
    let started: Value = reqwest::blocking::Client::new()
        .post(cluster.server(0).url("/api/v1/flows"))
        .bearer_auth(&cluster.key)
        .json(&serde_json::json!({"kind": "setup", "address": to, "name": "Tabi", "locale": "en"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let flow_id = started["flow_id"].as_str().expect("a flow").to_string();
    let token = token_in(&wait_for_mail(&outbox, to, "", 1));

    // The link on node 1, the button on node 2.
    let b = Browser::new(cluster.server(0));
    assert_eq!(b.get(&format!("/v/{token}")).status, 200);
    let b = b.moved_to(cluster.server(1));
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 303);
    let code = code_in(&wait_for_code(&outbox, to, 1));

    // 300 right codes at once, spread over the three nodes: one success.
    let cookie = b.cookie_header();
    let csrf = b.cookie("mg_csrf").unwrap();
    let barrier = std::sync::Barrier::new(300);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..300)
            .map(|i| {
                let url = cluster.server(i % 3).url(&format!("/v/{token}/code"));
                let (cookie, csrf, code, barrier) = (&cookie, &csrf, &code, &barrier);
                s.spawn(move || {
                    let http = reqwest::blocking::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .unwrap();
                    barrier.wait();
                    http.post(url)
                        .header("cookie", cookie)
                        .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );

    // The password on node 1, after the code was taken on whichever node won.
    let b = b.moved_to(cluster.server(0));
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", PASSWORD), ("password2", PASSWORD)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
    let flow: Value = reqwest::blocking::Client::new()
        .get(cluster.server(2).url(&format!("/api/v1/flows/{flow_id}")))
        .bearer_auth(&cluster.key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(flow["state"], "completed", "{flow}");
}

#[test]
fn a_bounce_taken_by_one_node_ends_a_flow_started_on_another_and_limits_are_shared() {
    let sink = Sink::start(&[]);
    let inbound = crate::support::free_port();
    let cluster = Cluster::start(2, |i| {
        let listen = if i == 1 {
            format!("127.0.0.1:{inbound}")
        } else {
            String::new()
        };
        relay_config(sink.port, "\"1s\"").replace(
            "[inbound]\nlisten = \"\"\n",
            &format!("[inbound]\nlisten = \"{listen}\"\n"),
        )
    });
    let http = reqwest::blocking::Client::new();
    let started: Value = http
        .post(cluster.server(0).url("/api/v1/flows"))
        .bearer_auth(&cluster.key)
        .json(&serde_json::json!({"kind": "setup", "address": "gone@example.jp", "name": "Gone", "locale": "ja"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let flow_id = started["flow_id"].as_str().unwrap().to_string();
    let id = started["message_id"].as_str().unwrap().to_string();
    cluster.inst(0).wait_delivered(&id);
    let (verp, header) = cluster.inst(0).return_path_of(&sink, &id);
    let report = dsn(
        &verp,
        "gone@example.jp",
        &header,
        "failed",
        "5.1.1",
        "550 5.1.1 <gone@example.jp>: User unknown",
    );
    assert!(
        smtp_send(inbound, "", &[&verp], &report)
            .iter()
            .any(|r| r.starts_with("250 2.0.0")),
        "node 2 takes the bounce"
    );
    let flow = || -> Value {
        http.get(cluster.server(0).url(&format!("/api/v1/flows/{flow_id}")))
            .bearer_auth(&cluster.key)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(
        wait_for(5, || flow()["state"] == "undeliverable"),
        "{}",
        flow()
    );

    // The per-client /reset limit counts requests on both nodes together.
    let reset = |node: usize| {
        let b = Browser::new(cluster.server(node));
        assert_eq!(b.get("/reset").status, 200);
        b.post("/reset", &[("address", "x@example.jp")]).status
    };
    let statuses: Vec<u16> = (0..40).map(|i| reset(i % 2)).collect();
    assert!(
        statuses.contains(&429),
        "40 requests from one client over two nodes were never limited: {statuses:?}"
    );
}

#[test]
fn a_node_whose_database_is_unreachable_exits_naming_the_key_without_the_password() {
    let port = crate::support::free_port();
    let inst = Instance::with_url(
        "",
        Some(&format!(
            "postgres://mailgate:s3cret-pw@127.0.0.1:{port}/mailgate"
        )),
    );
    let out = inst.run(&["serve"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.url"), "{err}");
    assert!(!err.contains("s3cret-pw"), "the password is shown: {err}");
}

#[test]
fn store_copy_moves_a_sled_store_with_queued_mail_and_an_open_flow_to_postgres() {
    let outbox = tempfile::tempdir().unwrap();
    let delivery = format!(
        "[delivery]\nmode = \"outbox\"\noutbox_dir = \"{}\"\n",
        outbox.path().display()
    );
    // A sled store whose server never ran: the invitation and a notice wait in its queue.
    let sled = Instance::on_sled(&delivery);
    let out = sled.run(&["invite", "moving@example.jp", "--locale", "en"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let notice = sled.send_notice("notice@example.jp");

    let db = TestDatabase::create();
    let out = sled.run(&["store", "copy", "--to", &db.url]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("messages: 2"), "{printed}");
    assert!(printed.contains("flows: 1"), "{printed}");
    // A second copy into the same database is refused.
    let again = sled.run(&["store", "copy", "--to", &db.url]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty database"));

    // A PostgreSQL node delivers the copied queue, and the copied link completes.
    let node = Instance::with_url(&delivery, Some(&db.url));
    let server = node.serve();
    let token = token_in(&wait_for_mail(outbox.path(), "moving@example.jp", "", 1));
    wait_for_mail(outbox.path(), "notice@example.jp", "", 1);
    assert_eq!(node.log_json(&notice)["messages"][0]["status"], "delivered");
    let b = Browser::new(&server);
    assert_eq!(b.get(&format!("/v/{token}")).status, 200);
    assert_eq!(b.post(&format!("/v/{token}"), &[]).status, 303);
    let code = code_in(&wait_for_code(outbox.path(), "moving@example.jp", 1));
    assert_eq!(
        b.post(&format!("/v/{token}/code"), &[("code", &code)])
            .status,
        303
    );
    let set = b.post(
        &format!("/v/{token}/password"),
        &[("password", PASSWORD), ("password2", PASSWORD)],
    );
    assert_eq!(set.status, 303, "{}", set.body);
}

#[test]
fn check_names_an_unreachable_database_and_healthz_fails_when_it_goes() {
    let port = crate::support::free_port();
    let down = Instance::with_url(
        "",
        Some(&format!(
            "postgres://mailgate:s3cret-pw@127.0.0.1:{port}/mailgate"
        )),
    );
    let out = down.run(&["check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("store.url"), "{text}");
    assert!(!text.contains("s3cret-pw"), "the password is shown: {text}");

    let db = TestDatabase::create();
    let inst = Instance::with_url("", Some(&db.url));
    let key = inst.api_key();
    let out = inst.run(&["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let server = inst.serve();
    let healthz = || {
        reqwest::blocking::get(server.url("/healthz"))
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(healthz(), 200);
    drop(db); // DROP DATABASE … WITH (FORCE): the database goes away under the node.
    assert!(
        wait_for(10, || healthz() == 503),
        "healthz answered {}",
        healthz()
    );
    // The API answers 503 in its one error shape, with no database text in it.
    let resp = reqwest::blocking::Client::new()
        .post(server.url("/api/v1/messages"))
        .bearer_auth(&key)
        .json(
            &serde_json::json!({"to": "a@example.jp", "template": "notice", "locale": "en",
               "vars": {"subject": "Hours", "body": "We open at nine."}}),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().expect("a JSON error body");
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("postgres") && !text.contains("database"),
        "internal text in the body: {text}"
    );
}
