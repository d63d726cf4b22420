"""Ready a NIC for a userspace datapath: up, offloads off, no IPv6 chatter.

Where this sits: called by ``io.open_port`` before a port's transport opens.
Checksum offloads on a veth produce frames whose TCP/UDP checksum is only
partial; forwarded from userspace they arrive corrupt, so they are turned
off, and VLAN tags are kept inline.
"""

from __future__ import annotations

import shutil
import subprocess


class PortError(Exception):
    """A port that cannot be opened; the message is for the user."""


def prepare(ifname: str) -> None:
    """Bring the interface up with offloads off and no IPv6 chatter from the kernel."""
    ethtool = shutil.which("ethtool") or "/usr/sbin/ethtool"
    try:
        subprocess.run(["ip", "link", "set", ifname, "up"], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise PortError(f"cannot bring up interface {ifname!r}: {exc.stderr.strip()}") from None
    except FileNotFoundError:
        raise PortError("the 'ip' command (iproute2) is missing; install iproute2") from None
    try:
        # Unsupported features make ethtool exit non-zero although the rest applied.
        subprocess.run(
            [
                ethtool,
                "-K",
                ifname,
                "rx",
                "off",
                "tx",
                "off",
                "tso",
                "off",
                "gso",
                "off",
                "gro",
                "off",
                "rxvlan",
                "off",
                "txvlan",
                "off",
            ],
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise PortError(
            "ethtool is missing; it is needed to turn checksum offloads off (apt-get install ethtool)"
        ) from None
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as fh:
            fh.write("1")
    except OSError:
        pass  # no IPv6 in this kernel: nothing to silence
