"""FTP helpers for the suites: a real server (pyftpdlib) and real clients (curl, Python's ftplib).

Where this sits: used by ``suites/e2e/test_ftp.py`` and the Robot keywords
(``keywords/ftp.py``).  A server serves files of several sizes with random
content; a download's sha256 is compared with the file's.  Active mode is
curl's ``--ftp-port -`` (EPRT, or PORT with ``--disable-eprt``); passive mode
is curl's default (EPSV, or PASV with ``--disable-epsv``, made to use the
address the 227 names with ``--no-ftp-skip-pasv-ip``: the address the ALG
wrote is the one it connects to).  ``Session`` is a control connection held
open by ftplib, for what a download in one go cannot show.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from suites.lib.expect import poll
from topologies.nodes import run

SIZES = {"small.bin": 700, "medium.bin": 200_000, "large.bin": 4_000_000}

_SERVER = r"""
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
root, bind, lo, hi, log = sys.argv[1:6]
logging.basicConfig(filename=log, level=logging.DEBUG)  # (DEBUG logs every command)
auth = DummyAuthorizer()
auth.add_anonymous(root, perm="elr")
FTPHandler.authorizer = auth
FTPHandler.passive_ports = range(int(lo), int(hi))
FTPServer((bind, 21), FTPHandler).serve_forever()
"""


class Server:
    """pyftpdlib on ``host``, port 21, anonymous read-only, passive ports ``ports``."""

    def __init__(self, lab: Any, host: str, ports: tuple[int, int] = (60000, 60100)) -> None:
        self.lab, self.host = lab, host
        self.dir = Path(tempfile.mkdtemp(prefix=f"edgelab-ftp-{host}-"))
        os.chmod(self.dir, 0o755)
        self.root = self.dir / "pub"
        self.root.mkdir()
        self.sums = {}
        for name, size in SIZES.items():
            data = os.urandom(size)
            (self.root / name).write_bytes(data)
            self.sums[name] = hashlib.sha256(data).hexdigest()
        addr = lab.plan["hosts"][host]["ip"].split("/")[0]
        self.address = addr
        self.log_path = self.dir / "server.log"
        argv = [sys.executable, "-c", _SERVER, str(self.root), addr, str(ports[0]), str(ports[1]), str(self.log_path)]
        self.proc = lab.host(host).popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        poll(lambda: self.listening() or None, timeout=10, what=f"the FTP server on {host} listening")

    def listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the FTP server on {self.host} exited: {self.proc.stderr.read().decode()[-500:]}")
        res = run(self.lab.host(self.host), ["ss", "-ltnH", "sport", "= :21"], check=False)
        return bool(res.stdout.strip())

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def download(lab: Any, client: str, url: str, mode: str, timeout: int = 40) -> tuple[str | None, str]:
    """``client`` fetches ``url`` with curl in ``mode`` (eprt, port, epsv, pasv): (sha256 of what
    arrived or None, curl's verbose log)."""
    flags = {
        "eprt": ["--ftp-port", "-"],
        "port": ["--ftp-port", "-", "--disable-eprt"],
        "epsv": [],
        "pasv": ["--disable-epsv", "--no-ftp-skip-pasv-ip"],
    }[mode]
    out = Path(tempfile.mkdtemp(prefix="edgelab-ftp-get-")) / "file"
    try:
        argv = ["curl", "-v", "-sS", "--max-time", str(timeout - 5), "-o", str(out), *flags, url]
        res = run(lab.host(client), argv, check=False, timeout=timeout)
        got = hashlib.sha256(out.read_bytes()).hexdigest() if res.returncode == 0 and out.exists() else None
        return got, res.stderr
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)


_SESSION = r"""
import ftplib, json, os, socket, sys, time
host, flag = sys.argv[1:3]
ftp = ftplib.FTP()
ftp.connect(host, 21, timeout=20)
ftp.login()
ftp.voidcmd("TYPE I")
peer = ftplib.parse227(ftp.sendcmd("PASV"))
print(json.dumps({"pasv": peer}), flush=True)
while not os.path.exists(flag):
    time.sleep(0.05)
data = socket.create_connection(peer, timeout=10)
ftp.putcmd("RETR " + sys.argv[3])
ftp.getresp()  # 150/125 (preliminary)
blob = b""
while True:
    chunk = data.recv(65536)
    if not chunk:
        break
    blob += chunk
data.close()
ftp.voidresp()  # 226
import hashlib
print(json.dumps({"sha256": hashlib.sha256(blob).hexdigest()}), flush=True)
ftp.quit()
"""


class Session:
    """A passive-mode download in two steps on ``client``: PASV (the endpoint the client was
    told is :attr:`endpoint`), then, once :meth:`go` is called, the data connection and RETR."""

    def __init__(self, lab: Any, client: str, server: str, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="edgelab-ftp-session-"))
        self.flag = self.dir / "go"
        argv = [sys.executable, "-c", _SESSION, server, str(self.flag), name]
        self.proc = lab.host(client).popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise AssertionError(f"the FTP session on {client} ended: {self.proc.stderr.read()[-800:]}")  # type: ignore[union-attr]
        host, port = json.loads(line)["pasv"]
        self.endpoint = (host, int(port))

    def go(self, timeout: float = 30) -> str:
        """Connect and fetch: the sha256 of what arrived."""
        self.flag.touch()
        deadline = time.monotonic() + timeout
        try:
            out, err = self.proc.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        for line in out.splitlines():
            if line.startswith('{"sha256"'):
                return json.loads(line)["sha256"]
        raise AssertionError(f"the download did not complete: {err[-800:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


def connects(lab: Any, host: str, endpoint: tuple[str, int], timeout: float = 2.0) -> bool:
    """Whether ``host`` can open a TCP connection to ``endpoint``."""
    code = f"import socket\nsocket.create_connection(({endpoint[0]!r}, {endpoint[1]}), timeout={timeout}).close()"
    return run(lab.host(host), ["python3", "-c", code], check=False, timeout=timeout + 5).returncode == 0
