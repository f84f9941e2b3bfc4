"""Fixtures every ceph-tier module shares: one admin librados client and one
throw-away pool per module, named after the module's POOL_PREFIX (so a pool left
behind by a failed run says which module made it)."""
import pytest

from tests.ceph import backendkit as kit


@pytest.fixture(scope="module")
def admin(ceph_cluster):
    client = kit.admin(ceph_cluster)
    yield client
    client.shutdown()


@pytest.fixture(scope="module")
def pool(request, admin):
    name = kit.make_pool(admin, getattr(request.module, "POOL_PREFIX", "h2"))
    yield name
    kit.remove_pool(admin, name)
