"""Helpers of the admin-command tests: a XAPI stand-in database with RBD SRs,
running `bin/rbdsr` as the admin would, and the pool state bad input must not change."""
import json
import os
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XAPI_DIR = os.path.join(ROOT, "tests", "fakesm", "xapi")
sys.path.insert(0, XAPI_DIR)
import XenAPI  # noqa: E402  (the stand-in)


class Pool(object):
    """A XAPI stand-in database with hosts and RBD SRs (one PBD per host each)."""

    def __init__(self, path, hosts=1):
        self.path = str(path)
        self.db = XenAPI.empty_db()
        self.hosts = []
        for i in range(hosts):
            ref = XenAPI.new_ref("host")
            self.db["host"][ref] = {"uuid": str(uuid.uuid4()), "name_label": "host%d" % i}
            self.hosts.append(ref)
        # XAPI always has one pool record; its master is host0 here
        self.db["pool"][XenAPI.new_ref("pool")] = {"uuid": str(uuid.uuid4()), "master": self.hosts[0]}
        self.save()

    def save(self):
        XenAPI.save_db(self.db, self.path)

    def add_secret(self, value):
        ref = XenAPI.new_ref("secret")
        suuid = str(uuid.uuid4())
        self.db["secret"][ref] = {"uuid": suuid, "value": value}
        self.save()
        return suuid

    def add_sr(self, name_label, dconf, sr_uuid=None, attached=False):
        sr_uuid = sr_uuid or str(uuid.uuid4())
        ref = XenAPI.new_ref("SR")
        self.db["SR"][ref] = {"uuid": sr_uuid, "name_label": name_label, "type": "lvmoiscsi",
                              "shared": True, "other_config": {}, "sm_config": {}}
        for h in self.hosts:
            pref = XenAPI.new_ref("PBD")
            self.db["PBD"][pref] = {"uuid": str(uuid.uuid4()), "SR": ref, "host": h,
                                    "device_config": dict(dconf), "currently_attached": attached,
                                    "other_config": {}}
        self.save()
        return sr_uuid

    def set_attached(self, sr_uuid, attached):
        self.db = XenAPI.load_db(self.path)
        sref = [r for r, v in self.db["SR"].items() if v["uuid"] == sr_uuid][0]
        for p in self.db["PBD"].values():
            if p["SR"] == sref:
                p["currently_attached"] = attached
        self.save()


def rbdsr(pool, *args, **kw):
    """Run bin/rbdsr; (exit code, stdout, stderr)."""
    env = dict(os.environ)
    env["FAKEXAPI_DB"] = pool.path
    env["PYTHONPATH"] = os.pathsep.join([XAPI_DIR, ROOT])
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bin", "rbdsr")] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env, timeout=kw.get("timeout", 300))
    return p.returncode, p.stdout, p.stderr


def state(client, pool):
    """{image: (size, metadata, [(snap, protected)])} of a pool."""
    import rbd
    out = {}
    with client.open_ioctx(pool) as io:
        for name in sorted(rbd.RBD().list(io)):
            with rbd.Image(io, name, read_only=True) as img:
                snaps = [(s["name"], img.is_protected_snap(s["name"])) for s in img.list_snaps()]
                out[name] = (img.size(), sorted(img.metadata_list()), snaps)
    return json.loads(json.dumps(out))


def read_all(client, pool, image, snap=None):
    import rbd
    with client.open_ioctx(pool) as io:
        with rbd.Image(io, image, snapshot=snap, read_only=True) as img:
            return img.read(0, img.size())
