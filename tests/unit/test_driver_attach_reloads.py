"""sm calls update and scan inside sr_attach (SR.after_master_attach, the MGT
sync): RBDSR must not reload sm's LVM SR (a vgs + an lvs each time) nor check
the PV size again when this process already did. Run in a child on the sm
stand-in, the driver's sm work replaced by counters."""
import json
import subprocess
import sys

import driverharness as h

CHILD = r"""
import json, sys
from rbdsr.smglue import driver, shim

calls = {"load": 0, "expand_check": 0, "checkVG": 0}
connects = []

class FakeTransport(object):
    attached = True
    def device_path(self):
        return "/dev/rbdsr/rbd/-/img"
    def refresh(self):
        pass
    def backend(self):
        from rbdsr.errors import RBDError
        connects.append(1)
        raise RBDError("no cluster in this test")  # the over-commit warning: skipped

def fake_load(self, uuid):
    calls["load"] += 1

shim.LVM_SR.load = fake_load
shim.LVM_SR.update = lambda self, uuid: None
shim.LVM_SR.scan = lambda self, uuid: None
shim.lvutil._checkVG = lambda vg: calls.__setitem__("checkVG", calls["checkVG"] + 1) or True
shim.lvutil._getVGstats = lambda vg: calls.__setitem__("expand_check", calls["expand_check"] + 1) or {
    "physical_size": 1 << 40}
driver.lvm_pv.device_size = lambda dev: DEV_SIZE[0]
driver.lvm_pv.resize = lambda dev: DEV_SIZE[0]
DEV_SIZE = [1 << 30]

class NonIniting(driver.RBDSR):
    def __init__(self, cmd):
        self.uuid = "0d5a7f0c-1111-4222-8333-944455556666"
        self.vgname = "VG_XenStorage-" + self.uuid
        self.dconf = {"SRmaster": "true"}
        self.cmd = cmd
        self.__dict__["_rbd_transport"] = FakeTransport()

    def _check_answering(self):
        pass  # stuck-request check (sysfs of a mapped device): not what this test is about

out = {}
sr = NonIniting("sr_attach")
sr._pathrefresh()          # what attach does once the image is mapped
sr._expand_size()          # sm's LVMSR.attach on the master
sr.update(sr.uuid)         # sm, inside the attach
sr.scan(sr.uuid)           # sm's after_master_attach
out["attach"] = dict(calls)
for k in calls:
    calls[k] = 0
sr = NonIniting("sr_update")  # XAPI's own sr_update: a fresh process
sr.update(sr.uuid)
out["update"] = dict(calls)
for k in calls:
    calls[k] = 0
sr = NonIniting("sr_detach")  # mapped when sm's LVM SR loaded: it saw the VG then
sr.__dict__["_rbd_loaded_mapped"] = True
sr._pathrefresh()
out["detach"] = dict(calls, device=sr.dconf.get("device"))
# Ceph connections for the over-commit warning: XAPI's periodic sr_scan of an image that
# did not grow opens none; sr_update does, and so does any call that found the image grown
out["connects"] = {}
for cmd, size in (("sr_scan", 1 << 30), ("sr_update", 1 << 30), ("sr_scan", 1 << 41), ("sr_attach", 1 << 41)):
    del connects[:]
    DEV_SIZE[0] = size
    sr = NonIniting(cmd)
    sr._expand_size()
    out["connects"]["%s %s" % (cmd, "grown" if size > 1 << 40 else "same")] = len(connects)
print(json.dumps(out))
"""


def test_attach_reloads_sm_lvm_once(tmp_path):
    tree = h.SMTree(str(tmp_path), "flat", hook=False)
    p = subprocess.run([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=tree.env(), timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    # one reload (after the map), one size check (sm's attach): update and scan add none
    assert out["attach"] == {"load": 1, "expand_check": 1, "checkVG": 0}, out
    # XAPI's sr_update still reloads and grows the PV when the image grew
    assert out["update"] == {"load": 1, "expand_check": 1, "checkVG": 1}, out
    # sr_detach: the image was mapped when sm's LVM SR loaded: the path is set, no second load
    assert out["detach"] == {"load": 0, "expand_check": 0, "checkVG": 0, "device": "/dev/rbdsr/rbd/-/img"}, out
    assert out["connects"] == {"sr_scan same": 0, "sr_update same": 1, "sr_scan grown": 1, "sr_attach grown": 1}, out
