"""`python -m app.networks`: the subnets of this container's own networks, comma-separated.

The start script trusts X-Forwarded-* from these (unless FORWARDED_ALLOW_IPS is set): the
container is only on internal networks, where nginx is the only HTTP client, and Docker
chooses their subnets, so they are read from the kernel's routing table at start.
"""

import ipaddress
from pathlib import Path


def own_subnets(routes: str) -> list[str]:
    """Link routes (not the default route, not loopback) of a /proc/net/route table."""
    subnets = []
    for line in routes.splitlines()[1:]:
        iface, dest, _gateway, _flags, _refcnt, _use, _metric, mask = line.split()[:8]
        if iface != "lo" and int(dest, 16):
            net = ipaddress.IPv4Network(
                (int.from_bytes(bytes.fromhex(dest), "little"), bin(int(mask, 16)).count("1"))
            )
            subnets.append(str(net))
    return subnets


if __name__ == "__main__":
    print(",".join(own_subnets(Path("/proc/net/route").read_text())) or "127.0.0.1")
