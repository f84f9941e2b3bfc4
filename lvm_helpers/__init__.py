"""LVM on a mapped RBD image: lvm.conf `types`, blank/PV checks, VG
(de)activation, pvresize. (Mapping and its rollback are the driver's:
rbdsr.smglue.driver.)

No sm imports; Python 3.6 clean. Every LVM command runs with a timeout and an
argument list (no shell).
"""
