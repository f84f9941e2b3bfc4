"""Free TCP ports on 127.0.0.1 for a cluster's monitor."""
import errno
import random
import socket

# Below the kernel's ephemeral range and clear of Ceph's 6800-7300 daemon range,
# so a chosen port is not grabbed by an outgoing connection or an OSD.
_LOW, _HIGH = 10000, 30000


def is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        s.close()


def pick_free(count, exclude=()):
    """count distinct free ports, chosen at random so that clusters started at
    the same moment are unlikely to pick the same ones."""
    rng = random.SystemRandom()
    chosen = []
    for _ in range(2000):
        port = rng.randrange(_LOW, _HIGH)
        if port in chosen or port in exclude:
            continue
        if is_free(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free TCP port found on 127.0.0.1 in %d-%d" % (_LOW, _HIGH))
