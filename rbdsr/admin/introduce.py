"""Attaching a cloned image as a new SR in the pool: the same device-config
as the parent SR (monitors, pool, credentials: a secret uuid, not a key)
with SCSIid = the clone, a PBD on every host that has one for the parent."""
import shlex

from rbdsr.admin.xapi import SR_TYPE
from rbdsr.errors import ConfigError

HIDDEN_KEYS = ("chappassword",)  # a plain key never goes on a printed command line


class Steps(object):
    def __init__(self, sr, new_sr_uuid, image, name_label):
        self.sr = sr
        self.new_sr = new_sr_uuid
        self.label = name_label
        self.dconf = dict(sr.dconf)
        self.dconf["SCSIid"] = image
        self.dconf.pop("size", None)  # the image exists: nothing to create
        self.hosts = [p.host_uuid for p in sr.pbds]

    def commands(self):
        q = shlex.quote
        out = ["xe sr-introduce uuid=%s type=%s content-type=user shared=true name-label=%s"
               % (self.new_sr, SR_TYPE, q(self.label))]
        dc = []
        for k in sorted(self.dconf):
            v = "<key: store it with xe secret-create and use chappassword_secret>" if k in HIDDEN_KEYS \
                else self.dconf[k]
            dc.append(q("device-config:%s=%s" % (k, v)))
        for h in self.hosts:
            out.append("PBD=$(xe pbd-create sr-uuid=%s host-uuid=%s %s)" % (self.new_sr, h, " ".join(dc)))
            out.append("xe pbd-plug uuid=$PBD")
        out.append("xe sr-scan uuid=%s" % self.new_sr)
        return out

    def run(self, xs, say):
        x = xs.x
        try:
            ref = x.SR.introduce(self.new_sr, self.label, "clone of SR %s" % self.sr.uuid, SR_TYPE, "user",
                                 True, {})
            say("introduced SR %s" % self.new_sr)
            for h in self.hosts:
                href = x.host.get_by_uuid(h)
                pref = x.PBD.create({"host": href, "SR": ref, "device_config": self.dconf, "other_config": {}})
                x.PBD.plug(pref)
                say("plugged on host %s" % h)
            x.SR.scan(ref)
            say("scanned SR %s" % self.new_sr)
        except xs.mod.Failure as e:
            raise ConfigError("XAPI refused a step of attaching the new SR (%s); what is done stays: see"
                              " `xe sr-list uuid=%s params=all`" % (e.details[0] if e.details else e, self.new_sr))
