#!/usr/bin/env python3
"""Soak test (issue 15): one mailgate server under mixed load, killed at random.

For the given minutes it runs at once: API enqueues of notices, setup journeys (flow,
link from the mail, button, code from the mail, password), DSN bounces to the bounce
listener, console logins, and a slowloris client; every 30-90 s (scaled down for short
runs) the server is SIGKILLed and started again on the same port and store. Then it
stops killing, waits for the queue to drain, and reports: acknowledged, delivered,
lost (must be 0), duplicates, journeys started and completed, 5xx answers, peak RSS
and open file descriptors. Exit status 1 when anything acknowledged was lost.

Run it with scripts/soak.sh (which builds the binary); not part of `cargo test`.
"""

import argparse
import email
import email.policy
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--binary", required=True)
ap.add_argument("--minutes", type=float, default=10)
ap.add_argument("--kill-min", type=float, default=30)
ap.add_argument("--kill-max", type=float, default=90)
args = ap.parse_args()

ADMIN_PASSWORD = "soak admin password 123"
NEW_PASSWORD = "a long journey passphrase 42"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


work = tempfile.mkdtemp(prefix="mailgate-soak-")
# smtp-sink drops root privileges to nobody, who must reach its dump folder.
os.chmod(work, 0o755)
dumps = os.path.join(work, "sink")
os.makedirs(dumps)
os.chmod(dumps, 0o777)
http_port, inbound_port, sink_port = free_port(), free_port(), free_port()
config = os.path.join(work, "mailgate.toml")
with open(config, "w") as f:
    f.write(f"""[server]
listen = "127.0.0.1:{http_port}"
public_url = "http://127.0.0.1:{http_port}"
[store]
path = "{work}/store"
fsync = true
[sender]
from = "Soak Clinic <no-reply@example.jp>"
bounce_domain = "bounces.example.jp"
hostname = "mail.example.jp"
[delivery]
mode = "relay"
relay = "127.0.0.1:{sink_port}"
relay_tls = "none"
retry_schedule = ["2s", "5s", "10s"]
[inbound]
listen = "127.0.0.1:{inbound_port}"
[log]
format = "text"
level = "warn"
""")

sink_cmd = ["/usr/sbin/smtp-sink"]
if os.geteuid() == 0:
    sink_cmd += ["-u", "nobody"]
sink = subprocess.Popen(sink_cmd + ["-d", f"{dumps}/%H%M%S.", f"127.0.0.1:{sink_port}", "256"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
if sink.poll() is not None:
    sys.exit(f"smtp-sink exited at once (status {sink.returncode}): run scripts/install-test-peers.sh")


def run(*cli, stdin=None):
    return subprocess.run([args.binary, "--config", config, *cli], input=stdin,
                          capture_output=True, text=True)


api_key = run("apikey", "create", "soak").stdout.strip()
run("operator", "add", "soakadmin", "--role", "admin", stdin=ADMIN_PASSWORD + "\n")

lock = threading.Lock()
stats = {"acknowledged": set(), "http_5xx": 0, "conn_errors": 0, "journeys_started": 0,
         "journeys_completed": 0, "logins_ok": 0, "bounces_sent": 0, "kills": 0,
         "peak_rss_kb": 0, "peak_fds": 0, "slowloris_reconnects": 0}
stop = threading.Event()
server = {"proc": None}
log = open(os.path.join(work, "server.log"), "ab")


def start_server():
    p = subprocess.Popen([args.binary, "--config", config, "serve"], stdout=log, stderr=log)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.05)
    server["proc"] = p


def request(method, path, body=None, headers=None):
    """(status, headers, body) or None on a connection error (a restart)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        if r.status >= 500:
            with lock:
                stats["http_5xx"] += 1
        return r.status, r, data
    except OSError:
        with lock:
            stats["conn_errors"] += 1
        return None


def api(method, path, payload):
    return request(method, path, json.dumps(payload),
                   {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"})


def enqueuer():
    i = 0
    while not stop.is_set():
        i += 1
        r = api("POST", "/api/v1/messages", {"to": f"n{i}-{random.random():.6f}@example.jp",
                                             "template": "notice", "locale": "en",
                                             "vars": {"subject": "Soak", "body": "x" * 2000}})
        if r and r[0] == 202:
            with lock:
                stats["acknowledged"].add(json.loads(r[2])["message_id"])
        time.sleep(0.01)


def sink_messages():
    """Every dump as (message-id header, VERP return path, parsed message)."""
    out = []
    for name in os.listdir(dumps):
        try:
            raw = open(os.path.join(dumps, name), "rb").read()
        except OSError:
            continue
        mail_args = re.search(rb"^X-Mail-Args: <?([^> \r\n]*)", raw, re.M)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        mid = (msg.get("Message-ID") or "").strip("<> ")
        out.append((mid, mail_args.group(1).decode() if mail_args else "", msg))
    return out


def text_of(msg):
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            return part.get_content()
    return ""


def wait_mail(address, pattern, seen, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and not stop.is_set():
        for mid, _, msg in sink_messages():
            if mid in seen or address not in str(msg.get("To", "")):
                continue
            m = re.search(pattern, text_of(msg))
            if m:
                seen.add(mid)
                return m.group(1)
        time.sleep(0.5)
    return None


def form_post(path, fields, cookies):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return request("POST", path, urllib.parse.urlencode(fields), headers)


def take_cookies(r, cookies):
    for v in r[1].headers.get_all("Set-Cookie") or []:
        k, _, rest = v.partition("=")
        cookies[k] = rest.split(";")[0]


def csrf(body):
    m = re.search(rb'name="csrf" value="([^"]+)"', body)
    return m.group(1).decode() if m else ""


def journeys():
    i = 0
    seen = set()
    while not stop.is_set():
        i += 1
        address = f"j{i}-{random.randint(0, 10**9)}@example.jp"
        r = api("POST", "/api/v1/flows", {"kind": "setup", "address": address, "locale": "en"})
        if not r or r[0] != 202:
            time.sleep(1)
            continue
        with lock:
            stats["journeys_started"] += 1
            stats["acknowledged"].add(json.loads(r[2])["message_id"])
        try:
            link = wait_mail(address, r"(http://\S+/v/\S+)", seen)
            if not link:
                continue
            path = urllib.parse.urlparse(link).path
            cookies = {}
            page = request("GET", path)
            if not page:
                continue
            take_cookies(page, cookies)
            pressed = form_post(path, {"csrf": csrf(page[2])}, cookies)
            if not pressed or pressed[0] != 303:
                continue
            take_cookies(pressed, cookies)
            code = wait_mail(address, r"Code: (\d+)", seen)
            form = request("GET", path + "/code",
                           headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
            if not code or not form:
                continue
            take_cookies(form, cookies)
            sent = form_post(path + "/code", {"csrf": csrf(form[2]), "code": code}, cookies)
            if not sent or sent[0] != 303:
                continue
            take_cookies(sent, cookies)
            pw = request("GET", path + "/password",
                         headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
            if not pw:
                continue
            take_cookies(pw, cookies)
            done = form_post(path + "/password", {"csrf": csrf(pw[2]), "username": address,
                                                  "password": NEW_PASSWORD,
                                                  "password2": NEW_PASSWORD}, cookies)
            if done and done[0] == 303:
                with lock:
                    stats["journeys_completed"] += 1
        except Exception as e:  # a restart mid-journey: start another
            print("journey:", e, file=sys.stderr)


def logins():
    while not stop.is_set():
        cookies = {}
        form = request("GET", "/login")
        if form and form[0] == 200:
            take_cookies(form, cookies)
            r = form_post("/login", {"csrf": csrf(form[2]), "name": "soakadmin",
                                     "password": ADMIN_PASSWORD}, cookies)
            if r and r[0] == 303:
                with lock:
                    stats["logins_ok"] += 1
        time.sleep(2)


def bouncer():
    while not stop.is_set():
        time.sleep(1)
        msgs = [m for m in sink_messages() if m[1].startswith("bounce+")]
        if not msgs:
            continue
        mid, verp, msg = random.choice(msgs)
        rcpt = str(msg.get("To", "")).strip("<> ")
        dsn = (f"From: MAILER-DAEMON@mx.example.net\r\nTo: {verp}\r\nSubject: Delayed Mail\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/report; "
               "report-type=delivery-status; boundary=B\r\n\r\n--B\r\n"
               "Content-Type: text/plain\r\n\r\nDelayed.\r\n--B\r\n"
               "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
               f"Final-Recipient: rfc822; {rcpt}\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
               "Diagnostic-Code: smtp; 421 try later\r\n\r\n--B--\r\n")
        try:
            s = socket.create_connection(("127.0.0.1", inbound_port), timeout=10)
            f = s.makefile("rb")
            f.readline()
            for cmd in ["EHLO soak", "MAIL FROM:<>", f"RCPT TO:<{verp}>", "DATA"]:
                s.sendall(cmd.encode() + b"\r\n")
                while True:
                    line = f.readline()
                    if len(line) < 4 or line[3:4] != b"-":
                        break
            s.sendall(dsn.encode() + b".\r\nQUIT\r\n")
            f.readline()
            s.close()
            with lock:
                stats["bounces_sent"] += 1
        except OSError:
            pass


def slowloris():
    held = []
    while not stop.is_set():
        while len(held) < 50:
            try:
                s = socket.create_connection(("127.0.0.1", http_port), timeout=2)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            except OSError:
                break
        time.sleep(1)
        for s in list(held):
            try:
                s.sendall(b"X-a: b\r\n")
            except OSError:
                held.remove(s)
                s.close()
                with lock:
                    stats["slowloris_reconnects"] += 1
    for s in held:
        s.close()


def sampler():
    while not stop.is_set():
        p = server["proc"]
        try:
            with open(f"/proc/{p.pid}/status") as f:
                rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            fds = len(os.listdir(f"/proc/{p.pid}/fd"))
            with lock:
                stats["peak_rss_kb"] = max(stats["peak_rss_kb"], rss)
                stats["peak_fds"] = max(stats["peak_fds"], fds)
        except (OSError, AttributeError):
            pass
        time.sleep(1)


start_server()
workers = [threading.Thread(target=t, daemon=True) for t in
           (enqueuer, enqueuer, journeys, journeys, logins, bouncer, slowloris, sampler)]
for t in workers:
    t.start()
end = time.time() + args.minutes * 60
while time.time() < end:
    time.sleep(min(random.uniform(args.kill_min, args.kill_max), max(0, end - time.time())))
    if time.time() >= end:
        break
    server["proc"].send_signal(signal.SIGKILL)
    server["proc"].wait()
    with lock:
        stats["kills"] += 1
    start_server()
stop.set()
for t in workers:
    t.join(timeout=90)

# Drain: every acknowledged message should reach the sink.
acked = set(stats["acknowledged"])
deadline = time.time() + 180
while time.time() < deadline:
    delivered = {m[0].split("@")[0] for m in sink_messages()}
    if acked <= delivered:
        break
    time.sleep(2)
all_ids = [m[0].split("@")[0] for m in sink_messages()]
delivered = set(all_ids) & acked
server["proc"].send_signal(signal.SIGTERM)
code = server["proc"].wait(timeout=60)
sink.kill()
report = {
    "minutes": args.minutes, "kills": stats["kills"], "acknowledged": len(acked),
    "delivered": len(delivered), "lost": len(acked - delivered),
    "duplicates": len(all_ids) - len(set(all_ids)),
    "journeys_started": stats["journeys_started"],
    "journeys_completed": stats["journeys_completed"],
    "console_logins": stats["logins_ok"], "bounces_sent": stats["bounces_sent"],
    "http_5xx": stats["http_5xx"], "connection_errors_during_restarts": stats["conn_errors"],
    "slowloris_connections_closed_by_server": stats["slowloris_reconnects"],
    "peak_rss_mib": round(stats["peak_rss_kb"] / 1024, 1), "peak_open_fds": stats["peak_fds"],
    "sigterm_exit_status": code, "work_dir": work,
}
print(json.dumps(report, indent=2))
sys.exit(1 if report["lost"] or code != 0 else 0)
