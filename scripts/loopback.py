"""What the local fake servers (enrich_fakes.py, finder_sites.py) share: free loopback ports,
SMTP servers on one port of several loopback addresses, a DNS server on one port for UDP and
TCP (both retried when another process takes the port meanwhile), and serving until the
parent test closes stdin, after printing the one JSON line it reads."""

import asyncio
import json
import os
import socket
import sys

from dnslib.server import DNSServer

ATTEMPTS = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(server):
    """Stops any of the servers used here (aiosmtpd, dnslib, http.server, asyncio)."""
    for name in ("stop", "shutdown", "close"):
        if hasattr(server, name):
            getattr(server, name)()
            return


def started(controller):
    """An aiosmtpd controller, started (it raises when its port is taken)."""
    controller.start()
    return controller


async def on_one_port(starters, what):
    """Starts each `start(port)` (a server, or a coroutine giving one) on one free port, so
    servers on several loopback addresses share it; another port when one is taken."""
    for _ in range(ATTEMPTS):
        port = free_port()
        started = []
        try:
            for start in starters:
                server = start(port)
                started.append(await server if asyncio.iscoroutine(server) else server)
            return port, started
        except (OSError, RuntimeError):
            for server in started:
                stop(server)
    sys.exit(f"no free port for {what}")


def dns_server(resolver, logger):
    """A started DNS server on 127.0.0.1 answering UDP and TCP on one port: (udp, tcp)."""
    for _ in range(ATTEMPTS):  # a port free for UDP may be taken for TCP by another process
        udp = DNSServer(resolver, port=0, address="127.0.0.1", tcp=False, logger=logger)
        try:
            tcp = DNSServer(resolver, port=udp.server.server_address[1], address="127.0.0.1", tcp=True, logger=logger)
        except OSError:
            udp.server.server_close()
            continue
        udp.start_thread()
        tcp.start_thread()
        return udp, tcp
    sys.exit("no port free for DNS on both UDP and TCP")


async def serve(info, servers):
    """Prints `info` as the one JSON line the parent reads, serves until the parent closes
    stdin (so nothing outlives the test that started it), then stops `servers`."""
    print(json.dumps(info), flush=True)
    sys.stdout = open(os.devnull, "w")  # the parent stops reading after that line
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers:
        stop(server)
