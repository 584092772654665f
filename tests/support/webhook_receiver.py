"""A webhook receiver for the tests: verifies every request with the PyPI
`standardwebhooks` library (an implementation of the scheme independent of mailgate's)
and appends one JSON line per request to --out.

Each line: {"status", "verified", "error", "webhook_id", "body", "tampered_rejected",
"old_rejected"}. The last two say that the same library refuses the request with one
byte of the body changed, and signed with a timestamp an hour old.

--answers 500,500,200 answers the first requests so, then the last one for ever.
Binds port 0 and prints "listening PORT" once ready.
"""

import argparse
import json
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

parser = argparse.ArgumentParser()
parser.add_argument("--secret", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--answers", default="200")
args = parser.parse_args()

hook = Webhook(args.secret)
answers = [int(a) for a in args.answers.split(",")]
lock = threading.Lock()
count = 0


def rejected(body, headers):
    try:
        hook.verify(body, headers)
        return False
    except Exception:
        return True


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"webhook_id": headers.get("webhook-id"), "verified": False, "error": None}
        try:
            record["body"] = hook.verify(body, headers)
            record["verified"] = True
        except Exception as e:  # the library's refusal, kept for the test's message
            record["error"] = repr(e)
        tampered = body.replace(b"}", b" }", 1)
        record["tampered_rejected"] = rejected(tampered, headers)
        old = datetime.now(tz=timezone.utc) - timedelta(hours=1)
        old_headers = dict(headers)
        old_headers["webhook-timestamp"] = str(int(old.timestamp()))
        old_headers["webhook-signature"] = hook.sign(headers.get("webhook-id", ""), old, body.decode())
        record["old_rejected"] = rejected(body, old_headers)
        with lock:
            status = answers[min(count, len(answers) - 1)]
            count += 1
            record["status"] = status
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
