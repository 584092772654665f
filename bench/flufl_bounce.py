#!/usr/bin/env python3
"""The reference side of bench/bounces.rs: flufl.bounce (the detector GNU Mailman uses)
over the same files, timing only the parsing loop.

Usage: python3 bench/flufl_bounce.py ROUNDS FILE...
Prints one JSON object on stdout: the timed rounds' seconds, and per file the addresses
that `scan_message` (permanent failures) and `all_failures` (temporary + permanent) found.
The timed work is bytes -> result, as on the mailgate side: `email.message_from_bytes`
then `scan_message`, each file once per round; reading the files is not timed.
Needs `python3 -m pip install flufl.bounce`; bench/run.sh installs it when missing.
"""

import email
import json
import sys
import time

try:
    from flufl.bounce import all_failures, scan_message
except ImportError:
    sys.exit("flufl.bounce is missing: python3 -m pip install flufl.bounce")


def addresses(found):
    out = set()
    for a in found:
        if isinstance(a, bytes):
            a = a.decode("utf-8", "replace")
        out.add(a.strip().lower())
    return sorted(out)


def main():
    rounds = int(sys.argv[1])
    paths = sys.argv[2:]
    raws = []
    for p in paths:
        with open(p, "rb") as f:
            raws.append(f.read())

    # One untimed pass for the results (and to warm up the detectors' compiled patterns).
    files = []
    errors = 0
    for p, raw in zip(paths, raws):
        entry = {"file": p, "permanent": [], "all": []}
        try:
            msg = email.message_from_bytes(raw)
            entry["permanent"] = addresses(scan_message(msg))
            temp, perm = all_failures(msg)
            entry["all"] = addresses(set(temp) | set(perm))
        except Exception as e:  # a detector that raises counts as "found nothing"
            entry["error"] = repr(e)
            errors += 1
        files.append(entry)

    started = time.perf_counter()
    for _ in range(rounds):
        for raw in raws:
            try:
                scan_message(email.message_from_bytes(raw))
            except Exception:
                pass
    seconds = time.perf_counter() - started

    json.dump(
        {
            "rounds": rounds,
            "seconds": seconds,
            "errors": errors,
            "files": files,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
