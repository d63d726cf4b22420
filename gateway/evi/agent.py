"""The EVI control process: neighbour discovery and MAC advertisement between sites.

    python -m gateway.evi.agent --config FILE      (the gateway's own config)

Where this sits: beside the datapath of an edge with an ``evi`` section,
connected to its unix-socket transport (``io/ipc.py``) as client ``evi``.  It
speaks to the other sites' agents over the core with UDP port ``EVI_PORT``
to the tunnel addresses: the datapath punts what arrives for it, and routes
what it sends (``send`` through the tunnel endpoint).  Every message is
authenticated with the configured key (HMAC-SHA256); one that is not, or
that is malformed, or one too many from a site in a second, is dropped and
counted, and nothing else happens.

Discovery (as H3C's ENDP): each site registers with the discovery servers
(one or two; a site whose address is listed is one) every ``interval``; a
server answers with the list of sites registered with it, itself included,
and forgets a site it has not heard from for ``hold``.  Each site's links are
the union of the lists it has heard within ``hold`` (a server adds the sites
registered with it), handed to the datapath (``evi-links``): a full mesh
without per-pair configuration.  When no server has been heard for ``hold``
the links stay as they are: existing sites keep talking, new ones cannot join.

MAC advertisement (as EVI IS-IS, with EVPN's MAC mobility): every
``interval``, and at once when the datapath's set changes, each site sends
every other site the MACs learned on its local ports in the extended
instances, each with a sequence number, in messages of at most ``CHUNK``
MACs.  A receiver installs them behind the sender's link (``evi-install``),
so remote MACs are known before any data flows.  A MAC that becomes local at
a site while another claims it is advertised with the other's sequence
number + 1; the highest number wins (equal: the lower address), so a move
converges.  A MAC no longer local is withdrawn at once; one not advertised
again within ``hold`` is withdrawn by the receiver (aging).
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time
from typing import Any

from gateway import config
from gateway.evi.wire import AuthError, BadMessage, Site, open_message, packet, parse_site, seal
from gateway.headers import ip_str
from gateway.io import ipc

CHUNK = 48  # MACs per advertisement (a datagram well under any core MTU)
MAX_RATE = 50  # messages a second accepted from one site
MAX_CLAIMS = 16384  # MACs installed behind one site
MAX_SOURCES = 1024  # senders whose message rate is tracked at once
POLL = 0.25  # how often the datapath's local MACs are read, s


class Agent:
    def __init__(self, cfg: config.Config) -> None:
        ec = cfg.evi
        if ec is None:
            raise config.ConfigError(f"{cfg.source}: no 'evi' section: nothing for the EVI process to do")
        if ec.key is None:
            raise config.ConfigError(f"{cfg.source}: evi.key: the EVI control process needs the key of its messages")
        self.me = Site(ec.site, int(ec.address.ip), ec.mtu, sorted(ec.instances.values()))
        self.socket_path = ec.socket
        self.static = {int(lc.address) for lc in ec.links}
        dc = ec.discovery
        self.servers = [int(s) for s in dc.servers] if dc else []
        self.key = ec.key.encode()
        self.interval = dc.interval if dc else 1.0
        self.hold = dc.hold if dc else 3.5
        self.is_server = self.me.address in self.servers
        self.extended = sorted(ec.instances.values())
        self.af: list[int] | None = None  # the network ids this edge forwards (elect())
        self.elected = False  # whether af is an election's, not the wait before one
        self.changed_at = 0.0  # when the links or the forwarders last changed
        self.peers: dict[int, Site] = {}  # the other live edges of this site
        self.registered: dict[int, Site] = {}  # a server's sites
        self.lists: dict[int, tuple[list[Site], float]] = {}  # what each server said, and when
        self.discovered: dict[int, Site] = {}  # the links discovery gave (sent to the datapath)
        self.sent_links: list[dict[str, Any]] | None = None
        self.local: dict[tuple[int, str], int] = {}  # our MACs -> their sequence number
        self.claims: dict[tuple[int, str], tuple[int, int, float]] = {}  # MAC -> (seq, site address, heard)
        self.rate: dict[int, list[float]] = {}
        self.counts = dict.fromkeys(
            (
                "sent",
                "received",
                "auth_failed",
                "malformed",
                "rate_limited",
                "not_a_site",
                "claims_refused",
                "installed",
                "withdrawn",
                "moves",
            ),
            0,
        )
        self.sock: socket.socket | None = None
        self.started = time.monotonic()

    # -- the datapath -------------------------------------------------------------------
    def connect(self, timeout: float = 20.0) -> None:
        self.sock = ipc.connect(self.socket_path, "evi", timeout)

    def to_datapath(self, meta: dict[str, Any], payload: bytes = b"") -> None:
        ipc.send_nowait(self.sock, meta, payload)  # (lost when busy: the next round repeats it)

    def _log(self, event: dict[str, Any]) -> None:
        print(json.dumps(event), flush=True)

    # -- the wire -----------------------------------------------------------------------
    def seal(self, body: dict[str, Any]) -> bytes:
        return seal(self.key, body)

    def open(self, payload: bytes) -> dict[str, Any]:
        try:
            return open_message(self.key, payload)
        except AuthError:
            self.counts["auth_failed"] += 1
            raise

    def send(self, dst: int, body: dict[str, Any]) -> None:
        self.to_datapath({"type": "send", "router": "evi-sr"}, packet(self.me.address, dst, self.seal(body)))
        self.counts["sent"] += 1

    def on_packet(self, payload: bytes, now: float) -> None:
        """One punted IPv4 packet for our EVI port: check it, then act on it."""
        self.counts["received"] += 1
        try:
            if len(payload) < 28:
                raise BadMessage("truncated")
            ihl = (payload[0] & 0x0F) * 4
            src = int.from_bytes(payload[12:16], "big")
            if src not in self.rate and len(self.rate) >= MAX_SOURCES:
                # Senders are checked before their key is: garbage from many addresses must not
                # grow this without bound.  Windows older than a second count for nothing.
                self.rate = {a: w for a, w in self.rate.items() if now - w[0] < 1.0}
                if len(self.rate) >= MAX_SOURCES:
                    self.counts["rate_limited"] += 1
                    return
            window = self.rate.setdefault(src, [now, 0])
            if now - window[0] >= 1.0:
                window[0], window[1] = now, 0
            window[1] += 1
            if window[1] > MAX_RATE:
                self.counts["rate_limited"] += 1
                return
            body = self.open(payload[ihl + 8 :])
            kind = body["type"]
            if kind == "register" and self.is_server:
                self.on_register(src, body, now)
            elif kind == "sites" and src in self.servers:
                self.lists[src] = ([parse_site(s) for s in self._list(body, "sites", 4096)], now)
            elif kind == "macs":
                self.on_macs(src, body, now)
            else:
                raise BadMessage(f"unexpected {kind!r} from {ip_str(src)}")
        except AuthError:
            pass  # counted as auth_failed
        except (BadMessage, KeyError, TypeError, ValueError) as exc:
            self.counts["malformed"] += 1
            if self.counts["malformed"] <= 5:
                self._log({"event": "malformed", "error": str(exc)})

    @staticmethod
    def _list(body: dict[str, Any], key: str, limit: int) -> list[Any]:
        value = body.get(key, [])
        if not isinstance(value, list) or len(value) > limit:
            raise BadMessage(f"{key!r} must be a list of at most {limit}")
        return value

    # -- discovery ------------------------------------------------------------------------
    def on_register(self, src: int, body: dict[str, Any], now: float) -> None:
        site = parse_site(body.get("me"))
        if site.address != src:
            raise BadMessage(f"registration for {ip_str(site.address)} from {ip_str(src)}")
        site.heard = now
        if src not in self.registered:
            self._log({"event": "registered", "site": site.site, "address": ip_str(src)})
        self.registered[src] = site
        sites = [self.me.to_dict(), *(s.to_dict() for s in self.registered.values())]
        self.send(src, {"type": "sites", "sites": sites})

    def known_sites(self, now: float) -> dict[int, Site] | None:
        """Every other edge the servers told us about within ``hold`` (a server: also those
        registered with it); None when no server has been heard: nothing is known anew."""
        if self.is_server:
            for addr in [a for a, s in self.registered.items() if now - s.heard > self.hold]:
                self._log({"event": "expired", "address": ip_str(addr)})
                del self.registered[addr]
        fresh = [sites for sites, heard in self.lists.values() if now - heard <= self.hold]
        if not fresh and not self.is_server:
            return None
        out: dict[int, Site] = {}
        for sites in fresh:
            for s in sites:
                out[s.address] = s
        if self.is_server:
            out.update(self.registered)
        out.pop(self.me.address, None)
        return out

    def discovery_round(self, now: float) -> None:
        known = self.known_sites(now) if self.servers else {}
        if known is not None:  # else: no server heard, the links stay as they are
            # The other edges of this site are no EVI links (a loop through the site):
            # they share its instances, one appointed forwarder each.
            self.peers = {a: s for a, s in known.items() if s.site == self.me.site}
            if self.servers:
                self.discovered = {a: s for a, s in known.items() if s.site != self.me.site}
        self.elect(now)
        for server in self.servers:  # (after the election: we register what we forward)
            if server != self.me.address:
                self.send(server, {"type": "register", "me": self.me.to_dict()})
        if not self.servers:
            return
        links = sorted((s.to_dict() for s in self.discovered.values()), key=lambda d: d["address"])
        if links != self.sent_links:
            self.changed_at = now
            self._log({"event": "links", "links": [d["address"] for d in links]})
            self.to_datapath({"type": "evi-links", "links": links})
            self.sent_links = links

    def ready(self, now: float) -> bool:
        """Whether this edge knows its site's other edges well enough to elect: a server's
        list heard and two intervals since start (every edge has registered by then), or the
        hold time passed (nobody else is coming).  Without discovery: at once."""
        if not self.servers:
            return True
        up = now - self.started
        return (bool(self.lists or self.registered) and up >= 2 * self.interval) or up >= self.hold

    def elect(self, now: float) -> None:
        """The appointed forwarder of each extended instance among this site's live edges:
        network id modulo their number picks one, in address order; a site with one edge
        forwards everything."""
        members = sorted([self.me.address, *self.peers])
        af = [n for n in self.extended if members[n % len(members)] == self.me.address]
        self.elected = self.ready(now)
        if not self.elected:
            af = []  # the other edges of this site are not known yet: forward nothing
        if af != self.af:
            self.changed_at = now
            self._log({"event": "appointed", "netids": af, "edges": [ip_str(m) for m in members]})
            self.to_datapath({"type": "evi-af", "netids": af})
            self.af = af
            self.me.netids = af  # what we register: remote sites carry only these to us
            self.local = {k: v for k, v in self.local.items() if k[0] in af}

    def linked(self) -> set[int]:
        return self.static | set(self.discovered)

    # -- MAC advertisement ---------------------------------------------------------------
    def on_local_macs(self, rows: Any, now: float) -> None:
        """The datapath's local MACs in the extended instances: what we advertise."""
        if not isinstance(rows, list):
            return
        af = set(self.extended if self.af is None else self.af)
        now_local = {(int(r[0]), str(r[1])) for r in rows if isinstance(r, list) and len(r) == 2 and r[0] in af}
        added = now_local - set(self.local)
        gone = set(self.local) - now_local
        for key in added:
            claim = self.claims.pop(key, None)
            self.local[key] = claim[0] + 1 if claim is not None else 0
            if claim is not None:
                self.counts["moves"] += 1
                self._log({"event": "move", "mac": key[1], "from": ip_str(claim[1]), "seq": self.local[key]})
        for key in gone:
            del self.local[key]
        if gone:
            for dst in self.linked():
                self.send(dst, {"type": "macs", "site": self.me.site, "withdraw": [list(k) for k in sorted(gone)]})
        if added:
            self.advertise()

    def advertise(self) -> None:
        rows = [[netid, mac, seq] for (netid, mac), seq in sorted(self.local.items())]
        chunks = [rows[i : i + CHUNK] for i in range(0, len(rows), CHUNK)] or [[]]
        for dst in self.linked():
            for chunk in chunks:
                self.send(dst, {"type": "macs", "site": self.me.site, "macs": chunk})

    def on_macs(self, src: int, body: dict[str, Any], now: float) -> None:
        if src not in self.linked():
            self.counts["not_a_site"] += 1
            return
        rows = self._list(body, "macs", CHUNK)
        withdraw = self._list(body, "withdraw", 4096)
        install, move, remove = [], [], []
        held = sum(1 for c in self.claims.values() if c[1] == src)
        for row in rows:
            if not isinstance(row, list) or len(row) != 3 or not all(isinstance(x, (int, str)) for x in row):
                raise BadMessage(f"macs: {row!r}")
            netid, mac, seq = int(row[0]), str(row[1]), int(row[2])
            key = (netid, mac)
            mine = self.local.get(key)
            if mine is not None and (mine > seq or (mine == seq and self.me.address < src)):
                continue  # ours wins: the sender will install ours
            claim = self.claims.get(key)
            if claim is not None and claim[1] != src and (claim[0] > seq or (claim[0] == seq and claim[1] < src)):
                continue  # another site's claim wins
            if claim is None or claim[1] != src:
                if held >= MAX_CLAIMS:
                    self.counts["claims_refused"] += 1
                    continue
                held += 1
            self.claims[key] = (seq, src, now)
            if mine is not None:
                del self.local[key]  # it moved away from here: the datapath must let it go
                self.counts["moves"] += 1
                move.append([netid, mac])
            else:
                install.append([netid, mac])
        for row in withdraw:
            if not isinstance(row, list) or len(row) != 2:
                raise BadMessage(f"withdraw: {row!r}")
            key = (int(row[0]), str(row[1]))
            if key in self.claims and self.claims[key][1] == src:
                del self.claims[key]
                remove.append(list(key))
        if install or move or remove:
            meta = {"type": "evi-install", "address": ip_str(src), "add": install, "move": move, "withdraw": remove}
            self.to_datapath(meta)
            self.counts["installed"] += len(install) + len(move)
            self.counts["withdrawn"] += len(remove)

    def age_claims(self, now: float) -> None:
        by_site: dict[int, list[list[Any]]] = {}
        for key, (_seq, src, heard) in list(self.claims.items()):
            if now - heard > self.hold or src not in self.linked():
                del self.claims[key]
                by_site.setdefault(src, []).append(list(key))
        for src, keys in by_site.items():
            if src in self.linked():
                self.to_datapath({"type": "evi-install", "address": ip_str(src), "add": [], "withdraw": keys})
            self.counts["withdrawn"] += len(keys)

    def status(self) -> dict[str, Any]:
        return {
            "site": self.me.site,
            "server": self.is_server,
            "registered": sorted(ip_str(a) for a in self.registered),
            "appointed": self.af if self.elected else None,
            # Elected, and nothing changed for two intervals: the other sites have heard our
            # registration by now (a precondition for tests, not evidence of anything).
            "settled": self.elected and time.monotonic() - self.changed_at >= 2 * self.interval,
            "site_edges": sorted(ip_str(a) for a in self.peers),
            "servers_heard": {ip_str(s): round(time.monotonic() - h, 1) for s, (_l, h) in self.lists.items()},
            "links": sorted(ip_str(a) for a in self.linked()),
            "local_macs": len(self.local),
            "remote_macs": len(self.claims),
            **self.counts,
        }

    # -- the loop -------------------------------------------------------------------------
    def run(self, seconds: float | None = None) -> None:
        assert self.sock is not None
        end = None if seconds is None else time.monotonic() + seconds
        next_round = next_poll = 0.0
        while end is None or time.monotonic() < end:
            now = time.monotonic()
            if now >= next_round:
                self.discovery_round(now)
                self.advertise()
                self.age_claims(now)
                self.to_datapath({"type": "evi-status", "status": self.status()})
                next_round = now + self.interval
            if now >= next_poll:
                self.to_datapath({"type": "evi-macs"})
                next_poll = now + POLL
            wait = max(0.0, min(next_round, next_poll) - time.monotonic())
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                continue
            for meta, payload in ipc.received(self.sock):
                kind = meta.get("type")
                if kind == "packet":
                    self.on_packet(payload, time.monotonic())
                elif kind == "evi-macs":
                    self.on_local_macs(meta.get("macs"), time.monotonic())
                elif kind == "error":
                    self._log({"event": "datapath-error", "error": meta.get("error")})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.evi.agent", description="EVI discovery and MAC advertisement")
    ap.add_argument("--config", required=True)
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long (tests)")
    args = ap.parse_args(argv)
    try:
        agent = Agent(config.load(args.config))
        agent.connect()
    except (config.ConfigError, OSError) as exc:
        print(f"evi-agent: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"event": "start", "site": agent.me.site, "server": agent.is_server}), flush=True)
    try:
        agent.run(args.seconds)
    except (ConnectionError, KeyboardInterrupt) as exc:
        print(f"evi-agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
