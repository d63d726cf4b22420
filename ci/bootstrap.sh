#!/usr/bin/env bash
# Install what edgelab needs, idempotently: Debian packages, a virtualenv with
# the project in it, a running Open vSwitch.  Seconds when all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: run as root (apt-get, network namespaces, Open vSwitch)" >&2
    exit 1
fi

PKGS=(mininet openvswitch-switch ethtool iputils-ping tcpdump iproute2 netsniff-ng nftables frr
      python3-venv python3-pip procps make chromium chromium-driver keepalived isc-dhcp-client dnsmasq-base
      isc-dhcp-relay curl conntrackd radvd gcc python3-dev)
missing=()
for pkg in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's mininet is installed for /usr/bin/python3: the venv must see it.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import mininet" 2>/dev/null; then
    echo "bootstrap: creating .venv (Debian python3, system site packages for mininet)"
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing edgelab and its Python dependencies into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# The per-packet modules compiled with mypyc (gateway/native.py): rebuilt when their sources changed.
.venv/bin/python -P gateway/native.py build

if ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
    echo "bootstrap: starting Open vSwitch (userspace datapath only; the kernel module warning is expected)"
    /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || true
    if ! ovs-vsctl --timeout=10 show >/dev/null 2>&1; then
        echo "bootstrap: Open vSwitch did not start; see /var/log/openvswitch/" >&2
        exit 1
    fi
fi
echo "bootstrap: ready ($(.venv/bin/python --version), $(ovs-vsctl --version | head -1))"
