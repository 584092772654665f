//! `mailgate dns --check` against a local DNS server (`tests/support/dns_server.py`, dnslib)
//! serving the zone `mailgate dns --json` prints, altered one way per case: each broken
//! zone must fail the check and name its record; the right zone, and an equivalent SPF,
//! must pass. `mx` delivery runs end to end against the same server, to smtp-sinks on
//! several loopback addresses that stand for MX hosts.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Instance, Sink, free_port, python, require_python_modules, wait_for};

const IP: &str = "192.0.2.10";
const PTR_NAME: &str = "10.2.0.192.in-addr.arpa";

/// A running dnslib server; killed when dropped.
struct DnsServer {
    child: Child,
    port: u16,
}

impl DnsServer {
    fn start(dir: &Path, zone: &[Value]) -> DnsServer {
        require_python_modules("dnslib", "dnslib", "the local DNS server of the dns tests");
        let file = dir.join("zone.json");
        std::fs::write(&file, serde_json::to_string(zone).unwrap()).unwrap();
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dns_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(&file)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dns_server.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "dns_server.py did not start");
        DnsServer { child, port }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An instance with `sender.ip` set and a development DKIM key, and the zone that
/// publishes exactly what `mailgate dns --json` asks for.
fn instance_and_zone() -> (Instance, Vec<Value>) {
    let inst = Instance::new("");
    let config = inst.path().join("mailgate.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "hostname = \"mail.example.jp\"\n",
        &format!("hostname = \"mail.example.jp\"\nip = \"{IP}\"\n"),
    );
    std::fs::write(&config, text).unwrap();
    let _ = inst.serve(); // makes the development key
    let out = inst.run(&["dns", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut zone: Vec<Value> = records
        .iter()
        .filter_map(|r| match r["type"].as_str()? {
            "TXT" => Some(json!([r["name"], "TXT", r["strings"]])),
            "MX" => Some(json!([r["name"], "MX", r["value"]])),
            _ => None,
        })
        .collect();
    zone.push(json!(["mail.example.jp", "A", IP]));
    zone.push(json!([PTR_NAME, "PTR", "mail.example.jp"]));
    zone.push(json!(["example.jp", "MX", "10 mail.example.jp"]));
    (inst, zone)
}

fn check(inst: &Instance, server: &DnsServer) -> (bool, String) {
    let out = inst.run(&[
        "dns",
        "--check",
        "--nameserver",
        &format!("127.0.0.1:{}", server.port),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Replaces the value of the first record of `rtype` at a name matching `name`.
fn set(zone: &mut [Value], name: &str, rtype: &str, value: Value) {
    let r = zone
        .iter_mut()
        .find(|r| r[0].as_str().is_some_and(|n| n.contains(name)) && r[1] == rtype)
        .unwrap_or_else(|| panic!("no {rtype} at {name}"));
    r[2] = value;
}

fn remove(zone: &mut Vec<Value>, name: &str, rtype: &str) {
    zone.retain(|r| !(r[0].as_str().is_some_and(|n| n.contains(name)) && r[1] == rtype));
}

fn dkim_strings(zone: &[Value]) -> Vec<String> {
    let r = zone
        .iter()
        .find(|r| r[0].as_str().is_some_and(|n| n.contains("._domainkey.")))
        .unwrap();
    serde_json::from_value(r[2].clone()).unwrap()
}

#[test]
fn dns_check_passes_the_published_zone_and_an_equivalent_spf() {
    let (inst, zone) = instance_and_zone();
    let dir = tempfile::tempdir().unwrap();
    let server = DnsServer::start(dir.path(), &zone);
    let (ok, text) = check(&inst, &server);
    assert!(ok, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    drop(server);

    let mut equivalent = zone.clone();
    set(
        &mut equivalent,
        "bounces.example.jp",
        "TXT",
        json!([format!("v=spf1 ip4:{IP} -all")]),
    );
    let server = DnsServer::start(dir.path(), &equivalent);
    let (ok, text) = check(&inst, &server);
    assert!(
        ok,
        "an ip4: SPF naming the sending address is as good: {text}"
    );
    assert!(text.contains("passes for 192.0.2.10"), "{text}");
}

/// Each broken zone fails the check (exit status non-zero) with a finding naming the
/// record and saying what is wrong.
#[test]
fn dns_check_fails_each_broken_zone_naming_the_record() {
    let (inst, zone) = instance_and_zone();
    let dir = tempfile::tempdir().unwrap();
    type Alter = Box<dyn Fn(&mut Vec<Value>)>;
    let dkim = dkim_strings(&zone);
    let cases: Vec<(&str, Alter, &str, &str)> = vec![
        (
            "DKIM record missing",
            Box::new(|z| remove(z, "._domainkey.", "TXT")),
            "._domainkey.example.jp",
            "missing",
        ),
        (
            "DKIM key of another key",
            Box::new({
                let d = dkim.clone();
                move |z| {
                    let joined = d.concat();
                    let p = joined.rsplit_once("p=").unwrap().1;
                    let other = joined.replace(
                        p,
                        &format!("{}{}", if p.starts_with('A') { "B" } else { "A" }, &p[1..]),
                    );
                    set(z, "._domainkey.", "TXT", json!([other]))
                }
            }),
            "._domainkey.example.jp",
            "different key",
        ),
        (
            "Ed25519 record says k=rsa",
            Box::new({
                let d = dkim.clone();
                move |z| {
                    set(
                        z,
                        "._domainkey.",
                        "TXT",
                        json!([d.concat().replace("k=ed25519", "k=rsa")]),
                    )
                }
            }),
            "._domainkey.example.jp",
            "k=rsa",
        ),
        (
            "SPF host has no A record",
            Box::new(|z| remove(z, "mail.example.jp", "A")),
            "bounces.example.jp",
            "evaluates to",
        ),
        (
            "SPF host points elsewhere",
            Box::new(|z| set(z, "mail.example.jp", "A", json!("192.0.2.99"))),
            "bounces.example.jp",
            "evaluates to",
        ),
        (
            "two SPF records",
            Box::new(|z| z.push(json!(["bounces.example.jp", "TXT", ["v=spf1 -all"]]))),
            "bounces.example.jp",
            "2 SPF records",
        ),
        (
            "SPF changed",
            Box::new(|z| {
                set(
                    z,
                    "bounces.example.jp",
                    "TXT",
                    json!(["v=spf1 ip4:198.51.100.1 -all"]),
                )
            }),
            "bounces.example.jp",
            "evaluates to fail",
        ),
        (
            "EHLO SPF missing",
            Box::new(|z| remove(z, "mail.example.jp", "TXT")),
            "mail.example.jp",
            "no SPF record",
        ),
        (
            "DMARC missing",
            Box::new(|z| remove(z, "_dmarc.", "TXT")),
            "_dmarc.example.jp",
            "missing",
        ),
        (
            "DMARC invalid policy",
            Box::new(|z| {
                set(
                    z,
                    "_dmarc.",
                    "TXT",
                    json!(["v=DMARC1; p=nonee; rua=mailto:dmarc-reports@example.jp"]),
                )
            }),
            "_dmarc.example.jp",
            "p=nonee",
        ),
        (
            "DMARC rua domain takes no mail",
            Box::new(|z| remove(z, "example.jp", "MX")),
            "_dmarc.example.jp",
            "rua domain",
        ),
        (
            "MX missing",
            Box::new(|z| remove(z, "bounces.example.jp", "MX")),
            "bounces.example.jp",
            "no MX record",
        ),
        (
            "MX on a suffix-alike host",
            Box::new(|z| {
                set(
                    z,
                    "bounces.example.jp",
                    "MX",
                    json!("10 evilmail.example.jp"),
                )
            }),
            "bounces.example.jp",
            "points elsewhere",
        ),
        (
            "PTR missing",
            Box::new(|z| remove(z, PTR_NAME, "PTR")),
            "192.0.2.10",
            "no PTR",
        ),
        (
            "PTR names another host",
            Box::new(|z| set(z, PTR_NAME, "PTR", json!("host.isp.example.net"))),
            "192.0.2.10",
            "host.isp.example.net",
        ),
    ];
    let mut failures = Vec::new();
    for (what, alter, record, says) in cases {
        let mut z = zone.clone();
        alter(&mut z);
        let server = DnsServer::start(dir.path(), &z);
        let (ok, text) = check(&inst, &server);
        let finding = text
            .lines()
            .find(|l| l.starts_with("FAIL") && l.contains(record) && l.contains(says));
        println!("{what}: {}", finding.unwrap_or("(no finding)"));
        if ok || finding.is_none() {
            failures.push(format!("{what}: exit ok={ok}\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

#[test]
fn dns_check_without_a_reachable_server_is_one_clear_error() {
    let (inst, _) = instance_and_zone();
    // A port nothing listens on: UDP questions go unanswered, TCP is refused.
    let port = free_port();
    let out = inst.run(&[
        "dns",
        "--check",
        "--nameserver",
        &format!("127.0.0.1:{port}"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no DNS server answered"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("missing"),
        "records must not be reported missing when DNS cannot be asked"
    );
}

/// `mx` delivery's route lookup asks the configured name server: preference order, the
/// implicit MX of a domain with only an A record, a null MX, and a domain that does not
/// exist.
#[test]
fn mx_routes_come_from_the_configured_name_server() {
    use mailgate::delivery::mx::{Route, RouteError, route};
    let dir = tempfile::tempdir().unwrap();
    let zone = vec![
        json!(["pref.example.jp", "MX", "20 backup.example.jp"]),
        json!(["pref.example.jp", "MX", "10 primary.example.jp"]),
        json!(["aonly.example.jp", "A", "127.0.0.1"]),
        json!(["null.example.jp", "MX", "0 ."]),
    ];
    let server = DnsServer::start(dir.path(), &zone);
    let ns: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resolver = mailgate::dns::resolver(&[ns], false).unwrap();
        assert_eq!(
            route(&resolver, "pref.example.jp").await.unwrap(),
            Route::Hosts(vec![
                "primary.example.jp".into(),
                "backup.example.jp".into()
            ])
        );
        assert_eq!(
            route(&resolver, "aonly.example.jp").await.unwrap(),
            Route::Hosts(vec!["aonly.example.jp".into()])
        );
        assert_eq!(
            route(&resolver, "null.example.jp").await.unwrap(),
            Route::NullMx
        );
        assert!(matches!(
            route(&resolver, "nowhere.example.jp").await,
            Err(RouteError::NoSuchDomain(_))
        ));
    });
}

/// `mx` delivery end to end: every name (MX and host addresses) comes from the local DNS
/// server, and the sinks listen on `delivery.mx_port` on loopback addresses that stand for
/// the MX hosts. The more preferred host gets the mail; an absent (no listener) or
/// refusing (5xx greeting) first host gives way to the next; a domain with only an A
/// record gets its mail there (implicit MX); a null MX fails the message at once.
#[test]
fn mx_delivery_reaches_the_sink_through_the_local_name_server() {
    let port = free_port();
    let primary = Sink::start_at("127.0.0.1", port, &[]);
    let backup = Sink::start_at("127.0.0.4", port, &[]);
    let refusing = Sink::start_at(
        "127.0.0.3",
        port,
        &["-f", "CONNECT", "-B", "554 5.3.2 not accepting mail"],
    );
    let dir = tempfile::tempdir().unwrap();
    let zone = vec![
        json!(["pref.example.jp", "MX", "20 mx-b.example.jp"]),
        json!(["pref.example.jp", "MX", "10 mx-a.example.jp"]),
        json!(["absent.example.jp", "MX", "10 gone.example.jp"]),
        json!(["absent.example.jp", "MX", "20 mx-a.example.jp"]),
        json!(["refusing.example.jp", "MX", "10 mx-r.example.jp"]),
        json!(["refusing.example.jp", "MX", "20 mx-a.example.jp"]),
        json!(["mx-a.example.jp", "A", "127.0.0.1"]),
        json!(["mx-b.example.jp", "A", "127.0.0.4"]),
        json!(["mx-r.example.jp", "A", "127.0.0.3"]),
        // Nothing listens there: the connection is refused.
        json!(["gone.example.jp", "A", "127.0.0.2"]),
        json!(["aonly.example.jp", "A", "127.0.0.1"]),
        json!(["null.example.jp", "MX", "0 ."]),
    ];
    let server = DnsServer::start(dir.path(), &zone);
    let inst = Instance::new(&format!(
        "[dns]\nnameservers = [\"127.0.0.1:{}\"]\n\
         [delivery]\nmode = \"mx\"\nmx_port = {port}\nretry_schedule = [\"1s\"]\n\
         connect_timeout = \"2s\"\ncommand_timeout = \"10s\"\n[inbound]\nlisten = \"\"\n",
        server.port
    ));
    let _server = inst.serve();
    let to = [
        "hanako@pref.example.jp",
        "jiro@absent.example.jp",
        "saburo@refusing.example.jp",
        "shiro@aonly.example.jp",
    ];
    let ids: Vec<String> = to.iter().map(|t| inst.send_notice(t)).collect();
    let null_id = inst.send_notice("goro@null.example.jp");
    for (id, rcpt) in ids.iter().zip(to) {
        inst.wait_delivered(id);
        let ev = inst.log_json(id)["messages"][0]["events"].clone();
        let delivered = ev
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["step"] == "delivered")
            .cloned()
            .unwrap_or_else(|| panic!("no delivered event for {rcpt}: {ev}"));
        assert_eq!(delivered["remote_ip"], "127.0.0.1", "{rcpt}: {delivered}");
    }
    let captured: Vec<String> = primary
        .messages()
        .iter()
        .map(|m| crate::support::parse_capture(m).rcpt_args)
        .collect();
    for rcpt in to {
        assert!(
            captured.iter().any(|r| r.contains(rcpt)),
            "{rcpt} did not reach the primary sink: {captured:?}"
        );
    }
    assert_eq!(backup.count(), 0, "the less preferred MX got mail");
    assert_eq!(refusing.count(), 0, "the refusing MX kept mail");

    // A null MX: failed on the first attempt, and the event says why.
    assert!(
        wait_for(30, || inst.log_json(&null_id)["messages"][0]["status"]
            == "failed"),
        "{}",
        inst.log_json(&null_id)
    );
    let ev = inst.log_json(&null_id)["messages"][0]["events"].clone();
    let events = ev.as_array().unwrap();
    let failed = events.iter().find(|e| e["step"] == "failed").unwrap();
    assert!(
        failed["reply"]
            .as_str()
            .is_some_and(|r| r.contains("null MX") && r.contains("null.example.jp")),
        "{failed}"
    );
    assert_eq!(failed["enhanced_status"], "5.1.10");
    assert_eq!(
        events.iter().filter(|e| e["attempt"].is_number()).count(),
        1,
        "retried: {ev}"
    );
}
