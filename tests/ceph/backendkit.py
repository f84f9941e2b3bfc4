"""Helpers shared by the backend tests: a private rbd pool per test module, a
least-privilege cephx user, device-configs pointing at the dev cluster, and an
admin-side snapshot of pools and images (to prove bad input changed nothing)."""
import json
import time
import uuid

import rados
import rbd


def admin(cluster):
    client = cluster.rados_client()
    if getattr(client, "state", "connected") != "connected":
        client.connect(timeout=30)
    return client


def mon(client, **cmd):
    cmd.setdefault("format", "json")
    ret, out, err = client.mon_command(json.dumps(cmd), b"")
    if ret < 0:
        raise RuntimeError("mon command %s failed: %s %s" % (cmd.get("prefix"), ret, err))
    return json.loads(out.decode()) if out.strip() else None


def make_pool(client, prefix="h2"):
    name = "%s-%s" % (prefix, uuid.uuid4().hex[:8])
    mon(client, prefix="osd pool create", pool=name, pg_num=8, pgp_num=8)
    mon(client, prefix="osd pool application enable", pool=name, app="rbd", yes_i_really_mean_it=True)
    # wait until the pool's PGs serve I/O and the mgr has stats for it
    # (`osd pool get-quota` says ENOENT "no stats" on a brand new pool)
    deadline = time.time() + 60
    while True:
        try:
            with client.open_ioctx(name) as io:
                io.write_full("h2-probe", b"x")
                io.remove_object("h2-probe")
            mon(client, prefix="osd pool get-quota", pool=name)
            return name
        except (rados.Error, RuntimeError):
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def remove_pool(client, name):
    try:
        mon(client, prefix="osd pool rm", pool=name, pool2=name, yes_i_really_really_mean_it=True)
    except RuntimeError:
        pass  # mon_allow_pool_delete may be off: the pool just stays


def make_user(client, cephx_id, pool, namespace=""):
    """A cephx user with the caps RBDSR asks for: mon 'profile rbd', osd 'profile rbd pool=P'."""
    osd = "profile rbd pool=%s" % pool + (" namespace=%s" % namespace if namespace else "")
    out = mon(client, prefix="auth get-or-create", entity="client." + cephx_id,
              caps=["mon", "profile rbd", "osd", osd])
    return out[0]["key"]


def dconf(cluster, pool, key, user="admin", **extra):
    d = {"target": cluster.mon_addr, "port": "6789", "targetIQN": pool,
         "chapuser": user, "chappassword": key, "timeout": "10"}
    d.update(extra)
    return d


def snapshot(client):
    """{pool: {image: (size, sorted metadata items)}} for every pool: the state bad input must not change."""
    state = {}
    for pool in sorted(client.list_pools()):
        with client.open_ioctx(pool) as io:
            images = {}
            try:
                names = rbd.RBD().list(io)
            except rbd.Error:
                names = []
            for name in names:
                try:
                    with rbd.Image(io, name, read_only=True) as img:
                        images[name] = (img.size(), sorted(img.metadata_list()))
                except rbd.ImageNotFound:
                    continue
            state[pool] = images
    return state
