"""RBDSR core: Ceph control plane, kernel RBD mapping and helpers.

Nothing in this package imports sm; the SM glue lives in RBDSR.py and
rbdsr.smglue. Everything here must import on dom0's Python 3.6.
"""
from rbdsr.version import read_version

__version__ = read_version()
