#!/usr/bin/python3
"""RBDSR: Ceph RBD storage for XCP-ng / XenServer (LVHD over one RBD image).

The thin end: `RBDSR.py version` prints the version, the sm shape found and the
hook fingerprints (on any machine, sm or not); run with an XML-RPC call in
argv[1], as XAPI runs a driver, it is the complete SM driver. The driver class
lives in rbdsr/smglue/driver.py; sm's own lvmoiscsi driver reaches it through
the hook (rbdsr/smglue/divert.py).
"""
import os
import sys

# dom0 may run this through a symlink: the package sits beside the real file
_HERE = os.path.dirname(os.path.realpath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

if __name__ == "__main__":
    if sys.argv[1:] in (["version"], ["--version"]):
        from rbdsr.smglue.versioncli import main as _version_main
        sys.exit(_version_main())
    from rbdsr.smglue import driver
    driver.main()
