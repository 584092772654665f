"""A local DNS server for the `dns --check` tests: serves the records of a JSON zone file
on 127.0.0.1 (UDP and TCP) until killed, with dnslib.

    dns_server.py ZONE.json PORT

ZONE.json is a list of [name, type, value]: TXT values are lists of character-strings,
MX "PREF HOST", A/AAAA an address, PTR a host name. A name with no record at all is
NXDOMAIN; a name with records of other types only answers NOERROR with no answer.
Prints "ready" once both listeners are up.
"""

import json
import sys
import time

from dnslib import AAAA, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class ZoneResolver(BaseResolver):
    def __init__(self, zone):
        self.records = []
        for name, rtype, value in zone:
            label = DNSLabel(name)
            if rtype == "TXT":
                rdata = TXT([s.encode() for s in value])
            elif rtype == "MX":
                pref, host = value.split()
                rdata = MX(host, int(pref))
            elif rtype == "A":
                rdata = A(value)
            elif rtype == "AAAA":
                rdata = AAAA(value)
            elif rtype == "PTR":
                rdata = PTR(value)
            else:
                raise SystemExit(f"unknown record type {rtype}")
            self.records.append((label, rtype, rdata))

    def resolve(self, request, handler):
        reply = request.reply()
        reply.header.aa = 1
        qname = request.q.qname
        qtype = QTYPE[request.q.qtype]
        known = False
        for label, rtype, rdata in self.records:
            if label == qname:
                known = True
                if rtype == qtype:
                    reply.add_answer(RR(qname, getattr(QTYPE, rtype), rdata=rdata, ttl=60))
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def main():
    zone = json.load(open(sys.argv[1]))
    port = int(sys.argv[2])
    resolver = ZoneResolver(zone)
    # No logging: stdout only says "ready" (the test stops reading it after that).
    quiet = DNSLogger(logf=lambda _s: None)
    servers = [
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=False, logger=quiet),
        DNSServer(resolver, port=port, address="127.0.0.1", tcp=True, logger=quiet),
    ]
    for s in servers:
        s.start_thread()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
