#!/usr/bin/env python3
"""Verify EVERY DKIM-Signature of a message with dkimpy, an independent verifier.

Usage: dkim_verify.py MESSAGE_FILE KEYS_JSON

KEYS_JSON is a file holding a JSON object mapping DNS names to TXT record
text, e.g. {"s1._domainkey.example.org": "v=DKIM1; k=ed25519; p=..."}. A
value may also be a list of strings, joined as a resolver joins the
character-strings of one TXT record. DNS lookups are answered from this map
only; the network is never used.

dkim.verify() checks only the first signature, so each one is verified by
index. Prints one line per signature:
    signature 0: pass a=ed25519-sha256 d=example.org s=s1
    signature 1: fail a=rsa-sha256 d=example.org s=s2 (reason)
Exit status: 0 when there is at least one signature and all pass, 1 when any
fails or there is none, 2 on usage errors, 3 when dkimpy (or PyNaCl, needed
for Ed25519) is missing.
"""

import json
import sys

try:
    import dkim
    import nacl  # noqa: F401  dkimpy needs PyNaCl for ed25519-sha256
except ImportError as e:
    print(
        f"dkim_verify.py: {e}; install the test peers with scripts/install-test-peers.sh "
        "(python3 -m pip install dkimpy pynacl)",
        file=sys.stderr,
    )
    sys.exit(3)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        message = f.read()
    with open(argv[2], "rb") as f:
        records = {
            name.rstrip(".").lower(): "".join(v) if isinstance(v, list) else v
            for name, v in json.load(f).items()
        }

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        value = records.get(name.rstrip(".").lower())
        return value.encode("ascii") if value is not None else None

    count = sum(1 for k, _ in dkim.DKIM(message).headers if k.lower() == b"dkim-signature")
    if count == 0:
        print("no DKIM-Signature header")
        return 1
    failed = 0
    for idx in range(count):
        d = dkim.DKIM(message)  # a fresh verifier per signature: no shared state
        reason = ""
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            ok, reason = False, f"{type(e).__name__}: {e}"
        fields = getattr(d, "signature_fields", None) or {}
        tags = " ".join(
            f"{t}={fields.get(t.encode(), b'?').decode('ascii', 'replace')}" for t in ("a", "d", "s")
        )
        if not ok:
            failed += 1
        print(f"signature {idx}: {'pass' if ok else 'fail'} {tags}" + (f" ({reason})" if reason else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
