#!/usr/bin/env python3
"""Local websites, DNS (dnslib) and SMTP (aiosmtpd) for the finders' tests and bench.

Everything listens on loopback only:

  HTTP  one server for every site, told apart by the Host header (finders crawl
        http://{domain}:{port}/ with LEADPUSH_CRAWL_HTTP_PORT):
          acme.test     company site: home, team page (mailto:, obfuscated `name [at] domain`,
                        JSON-LD Person), contact page (tel:, JSON-LD Organization, numbers in
                        text), about page, and /private/ which robots.txt disallows
          blog.test     one article per author rule, one without an author
          private.test  robots.txt disallows everything
          slow.test     the home page answers after 9 s (tests crawl with a 6 s budget)
          big.test      a team page over 1 MB (an address after the first MB), a small contact page
          bench.test    a small site for the bench
  DNS   A records of every site (and www.) -> 127.0.0.1; MX of each site to mx.{site}:
          mx.blog.test -> 127.0.0.2 (catch-all), every other mx -> 127.0.0.1
  SMTP  127.0.0.1  accepts the mailboxes in ACCEPT, rejects others (550 5.1.1)
        127.0.0.2  accepts every mailbox (catch-all); both on one port (LEADPUSH_SMTP_PORT)

Prints one JSON line with the ports, then serves until stdin closes.
"""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from dnslib import QTYPE, RR, A, MX, RCODE
from dnslib.server import BaseResolver, DNSLogger

from loopback import dns_server, on_one_port, serve, started

SITES = ["acme.test", "blog.test", "private.test", "slow.test", "big.test", "bench.test"]
ACCEPT = {"jmuller", "jdoe", "bsmith", "alee", "dscully", "fmulder", "wskinner", "info", "hello"}
LOCK = threading.Lock()
HITS = {}


def page(title, body, head=""):
    return f"<!doctype html><html><head><title>{title}</title>{head}</head><body>{body}</body></html>"


ACME = {
    "/robots.txt": "User-agent: *\nDisallow: /private/\n",
    "/": page(
        "Acme Corp | Home",
        """<h1>Welcome to Acme</h1>
        <a href="/team">Our team</a> <a href="/contact">Contact us</a> <a href="/about">About</a>
        <a href="/private/staff">Staff directory</a> <a href="/pricing">Pricing</a>
        <a href="https://twitter.com/acme">Twitter</a> <a href="https://www.linkedin.com/company/acme">LinkedIn</a>""",
        '<meta property="og:site_name" content="Acme Corporation">',
    ),
    "/team": page(
        "Team - Acme Corp",
        """<div class="person"><h3>Dana Scully</h3><p class="job-title">CTO</p>
             <a href="mailto:dscully@acme.test">Email Dana</a>
             <a href="https://www.linkedin.com/in/danascully">LinkedIn</a></div>
           <div class="person"><h3>Fox Mulder</h3><span class="role">Head of Sales</span>
             <p>fmulder [at] acme [dot] test</p></div>
           <p>Press: press@acme.test. Operations Europe: ops@eu.acme.test. Partner: bob@other.test</p>""",
        """<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Person",
             "name": "Walter Skinner", "email": "wskinner@acme.test", "jobTitle": "Director of Operations",
             "telephone": "+1 415 555 0134"}</script>""",
    ),
    "/contact": page(
        "Contact - Acme Corp",
        """<p>Call us: <a href="tel:+14155552671">+1 (415) 555-2671</a></p>
           <p>Berlin office: +49 30 901820 (Mon-Fri)</p>""",
        """<script type="application/ld+json">{"@context": "https://schema.org", "@type": "Organization",
             "name": "Acme Corporation", "telephone": "+1 415 555 2671"}</script>""",
    ),
    "/about": page("About - Acme Corp", "<p>Founded 2026-05-02 in Springfield.</p>"),
    "/private/staff": page("Staff", '<a href="mailto:secret@acme.test">secret</a> <a href="tel:+16502530000">x</a>'),
}


def article(head="", body=""):
    return page("An article", f"<article><h1>On engines</h1>{body}<p>Text.</p></article>", head)


BLOG = {
    "/robots.txt": "User-agent: *\nAllow: /\n",
    "/": page("Blog", "<p>Articles</p>"),
    "/a/json-ld": article(
        '<script type="application/ld+json">{"@type": "BlogPosting", "author": {"@type": "Person", "name": "Ada Lovelace"}}</script>'
        '<meta name="author" content="Someone Else">'
    ),
    "/a/meta": article('<meta name="author" content="Grace Hopper">'),
    "/a/itemprop": article(
        body='<span itemprop="author" itemscope><span itemprop="name">Katherine Johnson</span></span>'
    ),
    "/a/rel": article(body='<a rel="author" href="/authors/mh">Margaret Hamilton</a>'),
    "/a/byline": article(body='<p class="byline">May 2, 2026 · By Linus Torvalds · 5 min read</p>'),
    "/a/twitter": article('<meta name="twitter:creator" content="@dmr">'),
    "/a/none": article(),
}

PRIVATE = {
    "/robots.txt": "User-agent: *\nDisallow: /\n",
    "/": page("Private", '<a href="mailto:hidden@private.test">x</a> <a href="/team">Team</a>'),
    "/post": article('<meta name="author" content="Hidden Author">'),
}

BIG = {
    "/robots.txt": "User-agent: *\nAllow: /\n",
    "/": page("Big Co", '<a href="/team">Team</a> <a href="/contact">Contact</a>'),
    "/team": page("Big team", "<p>" + "x" * (1024 * 1024 + 100) + '</p><a href="mailto:hidden@big.test">h</a>'),
    "/contact": page("Contact", '<a href="mailto:hello@big.test">Write to us</a>'),
}

SLOW = {
    "/robots.txt": "User-agent: *\nAllow: /\n",
    "/": page("Slow", '<a href="mailto:late@slow.test">late</a>'),
}

BENCH = {
    "/robots.txt": "User-agent: *\nAllow: /\n",
    "/": page("Bench Co", '<a href="/team">Team</a> <a href="/contact">Contact</a> <a href="/about">About</a>'),
    "/team": page("Team", "".join(
        f'<div class="person"><h3>Person{chr(65 + i)} Benchmark</h3><a href="mailto:p{i}@bench.test">mail</a></div>'
        for i in range(20)
    )),
    "/contact": page("Contact", '<a href="tel:+14155552671">call</a>'),
    "/about": page("About", "<p>About us</p>"),
}

CONTENT = {"acme.test": ACME, "blog.test": BLOG, "private.test": PRIVATE, "big.test": BIG, "slow.test": SLOW,
           "bench.test": BENCH}


class Sites(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        host = (self.headers.get("host") or "").split(":")[0].lower()
        host = host[4:] if host.startswith("www.") else host
        path = self.path.split("?")[0]
        with LOCK:
            HITS.setdefault(host, []).append({"path": path, "agent": self.headers.get("user-agent", "")})
        if host == "slow.test" and path == "/":
            time.sleep(9)
        body = CONTENT.get(host, {}).get(path)
        if self.path == "/_hits":
            with LOCK:
                body = json.dumps(HITS)
        status = 200 if body is not None else 404
        data = (body if body is not None else "not found").encode()
        self.send_response(status)
        kind = "text/plain" if path.endswith(".txt") or path == "/_hits" else "text/html; charset=utf-8"
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


class Zones(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        bare = name[4:] if name.startswith("www.") else name
        if bare in SITES:
            if qtype == "A":
                reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=60, rdata=A("127.0.0.1")))
            elif qtype == "MX" and name == bare:
                reply.add_answer(RR(request.q.qname, QTYPE.MX, ttl=60, rdata=MX(f"mx.{bare}", 10)))
            return reply
        if name.startswith("mx.") and name[3:] in SITES:
            if qtype == "A":
                ip = "127.0.0.2" if name == "mx.blog.test" else "127.0.0.1"
                reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=60, rdata=A(ip)))
            return reply
        reply.header.rcode = RCODE.NXDOMAIN
        return reply


class Mailboxes:
    def __init__(self, catch_all):
        self.catch_all = catch_all

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if self.catch_all or local in ACCEPT:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        return "550 5.1.1 The email account that you tried to reach does not exist"

    async def handle_DATA(self, server, session, envelope):
        return "554 5.7.1 This test server takes no mail"


async def main():
    starters = [
        lambda port, host=host, catch_all=catch_all: started(
            Controller(Mailboxes(catch_all), hostname=host, port=port, ready_timeout=10)
        )
        for host, catch_all in (("127.0.0.1", False), ("127.0.0.2", True))
    ]
    port, smtp = await on_one_port(starters, "the SMTP servers")
    quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
    dns, dns_tcp = dns_server(Zones(), quiet)
    http = ThreadingHTTPServer(("127.0.0.1", 0), Sites)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    info = {
        "dns": f"127.0.0.1:{dns.server.server_address[1]}",
        "smtp_port": port,
        "http_port": http.server_address[1],
    }
    await serve(info, [*smtp, dns, dns_tcp, http])


if __name__ == "__main__":
    asyncio.run(main())
