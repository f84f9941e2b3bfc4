"""block-rbd: the Xen (xl/libxl) hotplug script for domU disks on RBD images.

    disk = [ 'vdev=xvda,access=rw,script=block-rbd,target=rbd:pool:image' ]

Modules, one job each (no sm imports; Python 3.6 clean):
  target    - the target= syntax -> validated `Target`, and the vbd mode
  cephconf  - monitors / fsid / keyring defaults from ceph.conf
  xenstore  - bounded xenstore-read/-write/-rm/-exists subprocesses
  claims    - cluster-wide claims: RBD advisory locks through librbd
  cluster   - a bounded librados connection for claims and clone-from
  script    - `block-rbd add|remove|claims|break-claim`: Xen's hotplug conventions
"""
