"""cephlab: a throwaway one-mon/one-mgr/one-OSD Ceph cluster for development
and tests (driven by tools/ceph-dev-cluster). Not shipped to dom0."""
