#!/usr/bin/env python3
"""Local DNS (dnslib), SMTP (aiosmtpd) and SOCKS5 servers for the email verifier's tests and bench.

Everything listens on loopback only. The SMTP servers share one port on different loopback
addresses (the verifier is pointed at that port with LEADPUSH_SMTP_PORT), one per behaviour:

  127.0.0.1  normal     accepts alice, bob, user<N>; rejects other mailboxes (550 5.1.1)
  127.0.0.2  catch-all  accepts every mailbox
  127.0.0.3  rejecting  rejects every mailbox (550 5.1.1)
  127.0.0.4  greylist   defers every mailbox (451 4.7.1)
  127.0.0.5  silent     accepts the connection and never says a word
  127.0.0.6  slow       as normal, but each RCPT takes 150 ms (sessions overlap)
  127.0.0.7  greycatch  a catch-all that defers each address the first time it is asked (451)
  127.0.0.8  slowprobe  as slow, for the prober's per-host bound (its peak is its own)
  127.0.0.9  limited    as normal, for the prober's rate limit (its connections are its own)

DNS zones: normal.test, catchall.test, reject.test, greylist.test, silent.test, greycatch.test,
slowprobe.test, limited.test (MX to the server above), slowmx.test (its subdomains each have an MX name of their own, all at the
slow server: many MX names, one IP), implicit.test (no MX, an A record: its own mail server), nomail.test (exists,
no MX and no address), gmail.com and bulk.test (MX to the normal server). Subdomains of a
zone behave like it (tests use unique ones: t1.silent.test). Every other name is NXDOMAIN.

Prints one JSON line with the addresses, then serves until stdin closes (so it never outlives
the test that started it). A small HTTP control server answers GET /stats (DNS queries by
name and type, SMTP connections, RCPTs and the most sessions open at once by server, SOCKS5
connections) and POST /reset.
"""

import asyncio
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from dnslib import QTYPE, RR, A, MX, TXT, RCODE
from dnslib.server import BaseResolver, DNSLogger

from loopback import dns_server, on_one_port, serve, started

LOCK = threading.Lock()
def empty_stats():
    return {"dns_queries": 0, "dns_by_name": {}, "smtp_connections": {}, "rcpt": {}, "probes": {}, "socks_connections": 0,
            "smtp_open": {}, "smtp_peak": {}, "rcpt_open": {}, "rcpt_peak": {}}


STATS = empty_stats()
SEEN = set()
# Addresses the greycatch server has deferred once (it accepts them from then on).
GREYLISTED = set()
# A catch-all probe's mailbox: 20 random lower-case letters and digits (see enrich::verify).
PROBE = re.compile(r"^[a-z0-9]{20}$")

SERVERS = {"normal": "127.0.0.1", "catchall": "127.0.0.2", "reject": "127.0.0.3", "greylist": "127.0.0.4", "silent": "127.0.0.5",
           "slow": "127.0.0.6", "greycatch": "127.0.0.7", "slowprobe": "127.0.0.8", "limited": "127.0.0.9"}
MX_ZONES = {
    "normal.test": "normal",
    "catchall.test": "catchall",
    "reject.test": "reject",
    "greylist.test": "greylist",
    "silent.test": "silent",
    "gmail.com": "normal",
    "bulk.test": "normal",
    "slowmx.test": "slow",
    "greycatch.test": "greycatch",
    "slowprobe.test": "slowprobe",
    "limited.test": "limited",
}


def zone_of(name):
    """The zone a name belongs to: itself or any subdomain (t1.silent.test is silent.test)."""
    for zone in MX_ZONES:
        if name == zone or name.endswith("." + zone):
            return zone
    return None
KNOWN = re.compile(r"^(alice|bob|user\d+)$")


def count(key, sub=None):
    with LOCK:
        if sub is None:
            STATS[key] += 1
        else:
            STATS[key][sub] = STATS[key].get(sub, 0) + 1


class Zones(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        # A resolver re-sends a UDP query it got no answer to yet (hickory: after 333 ms) with
        # the same message id: that is one lookup, counted once. TCP queries are keyed apart.
        tcp = "" if handler.protocol == "udp" else " tcp"
        with LOCK:
            first = (request.header.id, qname, qtype, tcp) not in SEEN
            SEEN.add((request.header.id, qname, qtype, tcp))
        if first:
            count("dns_queries")
            count("dns_by_name", f"{qname} {qtype}{tcp}")
        if qname.startswith("mx.") and zone_of(qname[3:]):
            if qtype == "A":
                reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=300, rdata=A(SERVERS[MX_ZONES[zone_of(qname[3:])]])))
            return reply
        if zone_of(qname):
            if qtype == "MX":
                reply.add_answer(RR(request.q.qname, QTYPE.MX, ttl=300, rdata=MX(f"mx.{qname}", 10)))
            return reply
        if qname == "implicit.test":
            if qtype == "A":
                reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=300, rdata=A(SERVERS["normal"])))
            return reply
        if qname == "nomail.test":
            if qtype == "TXT":
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, ttl=300, rdata=TXT("no mail here")))
            return reply
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


class Handler:
    def __init__(self, name):
        self.name = name

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        count("rcpt", self.name)
        local, _, domain = address.lower().partition("@")
        if PROBE.match(local):
            count("probes", domain)
        if self.name in ("slow", "slowprobe"):
            # Counted while the RCPT is held, not per connection: a client that has said QUIT
            # and moved on can still be "open" here until this loop sees the close, so the
            # connection peak can exceed what the client really had in flight.
            with LOCK:
                STATS["rcpt_open"][self.name] = STATS["rcpt_open"].get(self.name, 0) + 1
                STATS["rcpt_peak"][self.name] = max(STATS["rcpt_peak"].get(self.name, 0), STATS["rcpt_open"][self.name])
            try:
                await asyncio.sleep(0.15)
            finally:
                with LOCK:
                    STATS["rcpt_open"][self.name] -= 1
        if self.name == "greycatch":
            with LOCK:
                seen = address.lower() in GREYLISTED
                GREYLISTED.add(address.lower())
            if not seen:
                return "451 4.7.1 Greylisted, please try again later"
        if self.name in ("catchall", "greycatch") or (self.name in ("normal", "slow", "slowprobe", "limited") and KNOWN.match(local)):
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if self.name == "greylist":
            return "451 4.7.1 Greylisted, please try again later"
        return "550 5.1.1 The email account that you tried to reach does not exist"

    async def handle_DATA(self, server, session, envelope):
        return "554 5.7.1 This test server takes no mail"


class CountingController(Controller):
    def __init__(self, name, **kwargs):
        self.name = name
        super().__init__(Handler(name), **kwargs)

    def factory(self):
        count("smtp_connections", self.name)
        protocol = super().factory()
        name = self.name
        made, lost = protocol.connection_made, protocol.connection_lost

        def connection_made(transport):
            with LOCK:
                STATS["smtp_open"][name] = STATS["smtp_open"].get(name, 0) + 1
                STATS["smtp_peak"][name] = max(STATS["smtp_peak"].get(name, 0), STATS["smtp_open"][name])
            return made(transport)

        def connection_lost(exc):
            with LOCK:
                STATS["smtp_open"][name] = STATS["smtp_open"].get(name, 0) - 1
            return lost(exc)

        protocol.connection_made, protocol.connection_lost = connection_made, connection_lost
        return protocol


async def silent_server(host, port):
    async def hold(reader, writer):
        count("smtp_connections", "silent")
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()

    return await asyncio.start_server(hold, host, port)


async def socks5_server():
    """SOCKS5, no authentication, CONNECT only: enough for the probe's socks5 mode."""

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def serve(reader, writer):
        count("socks_connections")
        try:
            version, n = await reader.readexactly(2)
            await reader.readexactly(n)
            writer.write(b"\x05\x00")
            _, cmd, _, atyp = await reader.readexactly(4)
            if atyp == 1:
                host = socket.inet_ntoa(await reader.readexactly(4))
            elif atyp == 3:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
            port = int.from_bytes(await reader.readexactly(2), "big")
            if cmd != 1 or not (host.startswith("127.") or host in ("localhost", "::1")):
                writer.write(b"\x05\x02\x00\x01" + bytes(6))  # loopback only
                writer.close()
                return
            up_reader, up_writer = await asyncio.open_connection(host, port)
            writer.write(b"\x05\x00\x00\x01" + bytes(6))
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


class Control(BaseHTTPRequestHandler):
    def do_GET(self):
        with LOCK:
            body = json.dumps(STATS).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        with LOCK:
            STATS.update(empty_stats())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


async def main():
    starters = [
        lambda port, name=name: started(CountingController(name, hostname=SERVERS[name], port=port, ready_timeout=10))
        for name in ("normal", "catchall", "reject", "greylist", "slow", "greycatch", "slowprobe", "limited")
    ]
    starters.append(lambda port: silent_server(SERVERS["silent"], port))
    port, smtp = await on_one_port(starters, "the SMTP servers")
    quiet = DNSLogger(logf=lambda _line: None)  # stdout is the parent's pipe, read only once
    dns, dns_tcp = dns_server(Zones(), quiet)
    socks = await socks5_server()
    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    info = {
        "dns": f"127.0.0.1:{dns.server.server_address[1]}",
        "smtp_port": port,
        "socks5": f"127.0.0.1:{socks.sockets[0].getsockname()[1]}",
        "control": f"http://127.0.0.1:{control.server_address[1]}",
    }
    await serve(info, [*smtp, socks, dns, dns_tcp, control])


if __name__ == "__main__":
    asyncio.run(main())
