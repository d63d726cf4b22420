"""Keywords: FTP through the gateway's NAT, judged by what real clients download and are told."""

from __future__ import annotations

import re

from robot.api import logger
from robotlibcore import keyword

from suites.lib import ftp
from suites.lib.keywords.context import Context


class FtpKeywords:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.servers: dict[str, ftp.Server] = {}
        self.session: ftp.Session | None = None
        self.marks: dict[str, int] = {}  # host -> length of its server's log when a download began

    def _server(self, host: str) -> ftp.Server:
        if host not in self.servers:
            base = 60000 + 100 * len(self.servers)
            self.servers[host] = ftp.Server(self.ctx.lab, host, (base, base + 100))
        return self.servers[host]

    @keyword("an FTP server runs on ${host:[\\w-]+}")
    def server_runs(self, host: str) -> None:
        self._server(host)

    @keyword("${client:[\\w-]+} downloads every file from ${host:[\\w-]+} at ${address:[\\d.]+} in ${mode:\\w+} mode")
    def downloads(self, client: str, host: str, address: str, mode: str) -> None:
        server = self._server(host)
        # what the server is told is judged on this download's lines: it runs for the whole suite
        self.marks[host] = len(server.log())
        for name, want in server.sums.items():
            got, log = ftp.download(self.ctx.lab, client, f"ftp://{address}/{name}", mode.lower())
            logger.info(f"{client}: {name} in {mode} mode: sha256 {got} (the server's {want})")
            if got != want:
                raise AssertionError(f"{name} did not arrive intact in {mode} mode:\n{log[-1500:]}")
            if mode.lower() == "pasv":
                m = re.search(r"227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),", log, re.I)
                told = ".".join(m.groups()) if m else None
                if told != address:
                    raise AssertionError(f"{client} was told to connect to {told}, not the public {address}")

    @keyword("${host:[\\w-]+} was told only addresses of the SNAT pool")
    def told_the_pool(self, host: str) -> None:
        log = self._server(host).log()[self.marks.get(host, 0) :]
        told = re.findall(r"(?:EPRT \|1\|([\d.]+)\||PORT (\d+,\d+,\d+,\d+),)", log)
        addrs = {a or b.replace(",", ".") for a, b in told}
        pool = set(self.ctx.lab.plan["nat"]["pool"])
        logger.info(f"{host} was told {sorted(addrs)}; the pool is {sorted(pool)}")
        if not addrs or not addrs <= pool:
            raise AssertionError(f"{host} was told {sorted(addrs) or 'nothing'}, not only addresses of {sorted(pool)}")

    @keyword("${client:[\\w-]+} asks ${address:[\\d.]+} for a passive data connection to ${name:[\\w.]+}")
    def session_opens(self, client: str, address: str, name: str) -> None:
        self.session = ftp.Session(self.ctx.lab, client, address, name)
        logger.info(f"{client} was told {self.session.endpoint}")

    @keyword("${host:[\\w-]+} cannot connect to the announced data port")
    def third_host(self, host: str) -> None:
        assert self.session is not None, "no passive session is open"
        if ftp.connects(self.ctx.lab, host, self.session.endpoint):
            raise AssertionError(f"{host} reached {self.session.endpoint}, announced to another client")

    @keyword("the client downloads ${name:[\\w.]+} intact from ${host:[\\w-]+} through it")
    def session_completes(self, name: str, host: str) -> None:
        assert self.session is not None, "no passive session is open"
        try:
            got = self.session.go()
        finally:
            self.session.close()
            self.session = None
        if got != self._server(host).sums[name]:
            raise AssertionError(f"{name} did not arrive intact through the announced data connection")

    @keyword("the FTP servers stop")
    def servers_stop(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
