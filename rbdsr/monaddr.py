"""Ceph monitor addresses: the one place they are parsed, formatted and resolved.

Three spellings come in: the wizard's `target` ("a,b:6790,[::1]:6789"), the
`mon=` of a block-rbd target (';'-separated, same entries) and ceph.conf's
`mon_host` (address vectors "[v2:ip:3300/0,v1:ip:6789/0]"). All become a list
of (host, port) pairs; the kernel and librados get "ip:port,[ip6]:port".

dom0's 4.19 kernel client speaks msgr v1 only, cannot resolve names
(no CONFIG_CEPH_LIB_USE_DNS_RESOLVER) and cannot use an IPv6 scope id, so:
port 3300 is refused, names are resolved here (bounded by the caller's
timeout, every address of the name kept), and scoped addresses are refused
(a scope id like "eth0 ro" would also smuggle a space into the sysfs string).
"""
import ipaddress
import re
import socket
import time

from rbdsr.bounded import run_bounded
from rbdsr.errors import ConfigError, TimeoutError_, UnreachableError
from rbdsr.secret import show

DEFAULT_PORT = 6789  # Ceph's msgr v1 monitor port
MSGR2_PORT = 3300
MAX_MONITORS = 16
_HOST_LABEL_RE = re.compile(r"\A(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_KEY = "ConfigTargetMissing"


def _error(field, key):
    def err(message):
        return ConfigError("%s: %s" % (field, message), key=key)
    return err


def ip_or_none(host):
    """The normalised IP literal `host` (no brackets), or None when it is not one.
    Scoped IPv6 (fe80::1%eth0) is not an IP for us: the kernel cannot use it."""
    if not isinstance(host, str) or "%" in host:
        return None
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def validate_host(host, field="target", key=_KEY):
    """A host name, IPv4 or IPv6 literal (no brackets) -> normalised; ConfigError otherwise."""
    err = _error(field, key)
    if "%" in host:
        raise err("host %s: IPv6 scope ids are not supported (the kernel client cannot use them)"
                  % show(host))
    ip = ip_or_none(host)
    if ip is not None:
        return ip
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(_HOST_LABEL_RE.match(lab) for lab in name.split(".")):
        raise err("host %s is not a valid host name or IP address" % show(host))
    if re.match(r"\A[0-9.]+\Z", name):
        raise err("%s is not a valid IPv4 address" % show(host))
    return name.lower()


def _port(text, field, key, entry):
    if text == "":
        raise _error(field, key)("monitor %s: empty port" % show(entry))
    if not re.match(r"\A[0-9]{1,5}\Z", text or ""):
        raise _error(field, key)("monitor %s: port %s is not a number" % (show(entry), show(text)))
    port = int(text)
    if not 1 <= port <= 65535:
        raise _error(field, key)("monitor %s: port %d is out of range 1-65535" % (show(entry), port))
    return port


def parse_entry(entry, field="target", key=_KEY, refuse_v2=True):
    """'host', 'host:port', '[v6]', '[v6]:port' -> (host, port)."""
    err = _error(field, key)
    if entry.startswith("["):
        m = re.match(r"\A\[([^\]]+)\](?::([^:]*))?\Z", entry)
        if not m:
            raise err("monitor %s: malformed [IPv6]:port" % show(entry))
        host, port_text = m.group(1), m.group(2)
        if "%" in host:
            raise err("monitor %s: IPv6 scope ids are not supported" % show(entry))
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise err("monitor %s: %s is not an IPv6 address" % (show(entry), show(host)))
    else:
        if entry.count(":") > 1:
            raise err("monitor %s: write IPv6 addresses as [addr]:port" % show(entry))
        host, sep, port_text = entry.partition(":")
        if not sep:
            port_text = None
        host = validate_host(host, field, key)
    port = DEFAULT_PORT if port_text is None else _port(port_text, field, key, entry)
    if port == MSGR2_PORT and refuse_v2:
        raise err("monitor %s: port %d is msgr v2; dom0's kernel client needs the v1 port (usually %d)"
                  % (show(entry), port, DEFAULT_PORT))
    return host, port


def parse_list(text, field="target", key=_KEY, sep=","):
    """'a,b:6790,[::1]:6789' -> [(host, port), ...] without duplicates."""
    err = _error(field, key)
    entries = [e.strip() for e in text.split(sep)]
    if not text.strip() or any(not e for e in entries):
        raise err("no monitor given (or an empty entry in the list)")
    if len(entries) > MAX_MONITORS:
        raise err("more than %d monitors" % MAX_MONITORS)
    out = []
    for entry in entries:
        mon = parse_entry(entry, field, key)
        if mon not in out:
            out.append(mon)
    return out


def as_pairs(monitors):
    """[(host, port)] from pairs or 'host[:port]' strings (callers of krbd.map_image)."""
    out = []
    for mon in monitors or ():
        if isinstance(mon, (tuple, list)):
            host, port = mon[0], int(mon[1])
            pair = parse_entry(format_addr(host, port))
        else:
            pair = parse_entry(str(mon).strip())
        if pair not in out:
            out.append(pair)
    if not out:
        raise ConfigError("no monitor address given", key=_KEY)
    return out


def format_addr(host, port):
    """'ip:port', '[ip6]:port'."""
    if ":" in host:
        return "[%s]:%d" % (host, port)
    return "%s:%d" % (host, port)


def format_list(monitors):
    return ",".join(format_addr(h, p) for h, p in monitors)


# -- ceph.conf mon_host ------------------------------------------------------

def _split_tokens(text):
    """Split on commas / spaces / semicolons outside brackets."""
    tokens, cur, depth = [], "", 0
    for c in text:
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        if depth == 0 and c in ",; \t":
            if cur:
                tokens.append(cur)
            cur = ""
            continue
        cur += c
    if cur:
        tokens.append(cur)
    return tokens


def _conf_addr(addr, path):
    """One ceph.conf address -> (proto, host, port); proto is v1, v2, any or ''."""
    proto = ""
    m = re.match(r"\A(v1|v2|any):(.*)\Z", addr)
    if m:
        proto, addr = m.group(1), m.group(2)
    addr = addr.split("/", 1)[0]  # drop the /nonce
    host, port = parse_entry(addr, "%s mon_host" % path, _KEY, refuse_v2=False)
    return proto, host, port


def parse_mon_host(text, path="ceph.conf"):
    """mon_host text -> v1 monitors [(host, port)], in order, without duplicates."""
    out = []
    for token in _split_tokens(text):
        if token.startswith("[") and re.match(r"\A\[(v1|v2|any):", token):
            if not token.endswith("]"):
                raise ConfigError("%s: mon_host address vector %s is not closed" % (path, show(token)))
            entries = [e for e in token[1:-1].split(",") if e]
        else:
            entries = [token]
        for entry in entries:
            proto, host, port = _conf_addr(entry, path)
            if proto == "v2" or (proto == "" and port == MSGR2_PORT):
                continue  # the kernel client needs v1
            mon = (host, port)
            if mon not in out:
                out.append(mon)
    return out


# -- resolution --------------------------------------------------------------

def resolve_host(host, timeout, resolver=None, what="monitor"):
    """Every usable IP of `host` (itself when it is an IP), looked up in a thread
    so the lookup is bounded by `timeout`. Scoped addresses are dropped."""
    ip = ip_or_none(host)
    if ip is not None:
        return [ip]
    resolver = resolver or socket.getaddrinfo
    try:
        infos = run_bounded(lambda: resolver(host, None, 0, socket.SOCK_STREAM), timeout,
                            "resolving %s" % host)
    except TimeoutError_:
        raise UnreachableError("%s name %s did not resolve within %.1f s" % (what, host, timeout), key="DNSError")
    except (socket.gaierror, socket.herror, UnicodeError, OSError):
        infos = []
    ips = []
    for info in infos or []:
        ip = ip_or_none(info[4][0])
        if ip is not None and ip not in ips:
            ips.append(ip)
    if not ips:
        raise ConfigError("%s name %s does not resolve" % (what, host), key="DNSError")
    return ips


def resolve(monitors, timeout, resolver=None):
    """[(host, port)] -> [(ip, port)]: every address of every name, within `timeout` in total."""
    deadline = time.monotonic() + timeout
    out = []
    for host, port in monitors:
        remaining = max(0.1, deadline - time.monotonic())
        for ip in resolve_host(host, remaining, resolver):
            if (ip, port) not in out:
                out.append((ip, port))
    return out
