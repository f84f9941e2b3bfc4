"""DRIVER_INFO as XAPI reads it (sr_get_driver_info through the entry point)."""
import os

import pytest

import driverharness as h
from rbdsr.config import CONFIG_KEYS
from rbdsr.version import read_version


@pytest.fixture(params=["flat", "package"], scope="module")
def tree(request, tmp_path_factory):
    return h.SMTree(str(tmp_path_factory.mktemp("info-" + request.param)), request.param, hook=False)


def test_driver_info(tree):
    r = tree.run(h.method_call("sr_get_driver_info", {}), via="direct")
    assert r.ok, r
    info = r.value
    assert info["name"] == "RBDSR"
    assert info["driver_version"] == read_version() and info["driver_version"] != "unknown"
    assert info["required_api_version"] == "1.0"
    assert info["description"] and info["vendor"] and "copyright" in info
    # every capability of sm's LVHDoISCSISR (the stand-in keeps sm's list)
    stock = ["SR_PROBE", "SR_UPDATE", "SR_METADATA", "SR_TRIM", "VDI_CREATE", "VDI_DELETE",
             "VDI_ATTACH", "VDI_DETACH", "VDI_GENERATE_CONFIG", "VDI_CLONE", "VDI_SNAPSHOT",
             "VDI_RESIZE", "ATOMIC_PAUSE", "VDI_RESET_ON_BOOT/2", "VDI_UPDATE", "VDI_MIRROR",
             "VDI_CONFIG_CBT", "VDI_ACTIVATE", "VDI_DEACTIVATE"]
    assert sorted(info["capabilities"]) == sorted(stock)


def test_configuration_is_every_device_config_key(tree):
    r = tree.run(h.method_call("sr_get_driver_info", {}), via="direct")
    conf = r.value["configuration"]
    assert [c["key"] for c in conf] == [k for k, _ in CONFIG_KEYS]
    for c, (_, text) in zip(conf, CONFIG_KEYS):
        assert c["description"] == text and len(text) > 10


def test_driver_file_is_executable_python():
    path = os.path.join(h.ROOT, "RBDSR.py")
    with open(path) as f:
        assert f.readline().startswith("#!/usr/bin/python3")
