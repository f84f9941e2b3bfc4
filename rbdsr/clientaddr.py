"""A Ceph client instance address, 'ip:port/nonce' (a watcher, a blocklist entry).

One home for its syntax: rbdsr.fence picks the dead host's instances, the
backends blocklist exactly one. Never an IP alone: that would lock out a
rebooted host's new client too.
"""
import ipaddress
import re

from rbdsr.errors import ConfigError

_ADDR_RE = re.compile(r"\A(?:v1:|v2:|any:)?(\[[0-9A-Fa-f:.]+\]|[0-9.]+):([0-9]{1,5})/([0-9]{1,10})\Z")


def parse_instance(addr):
    """(ip, port, nonce) of a watcher address 'ip:port/nonce'; ConfigError when
    it is not one client instance (no nonce, nonce 0, bad IP)."""
    m = _ADDR_RE.match((addr or "").strip())
    if not m:
        raise ConfigError("%r is not a client instance address (ip:port/nonce)" % (addr,))
    ip = m.group(1).strip("[]")
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise ConfigError("%r has no valid IP address" % (addr,))
    port, nonce = int(m.group(2)), int(m.group(3))
    if nonce == 0 or port > 65535:
        raise ConfigError("%r does not name one client instance (nonce 0 would be every client on the IP)"
                          % (addr,))
    return ip, port, nonce


def instance_addr(addr):
    """The canonical 'ip:port/nonce' (IPv6 in brackets) to blocklist."""
    ip, port, nonce = parse_instance(addr)
    return "%s:%d/%d" % ("[%s]" % ip if ":" in ip else ip, port, nonce)
