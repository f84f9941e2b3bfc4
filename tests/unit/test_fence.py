"""rbdsr.fence: only one client instance (ip:port/nonce) is ever blocklisted,
and only the dead host's."""
import pytest

from rbdsr import fence
from rbdsr.errors import ConfigError


@pytest.mark.parametrize("addr,want", [
    ("10.0.0.5:0/3127645123", "10.0.0.5:0/3127645123"),
    ("v1:10.0.0.5:0/42", "10.0.0.5:0/42"),
    ("[fe80::1]:0/7", "[fe80::1]:0/7"),
])
def test_instance_addresses(addr, want):
    assert fence.instance_addr(addr) == want


@pytest.mark.parametrize("addr", ["10.0.0.5", "10.0.0.5:0", "10.0.0.5:0/0", "10.0.0.5/24", "host:0/4",
                                  "10.0.0.5:0/4 10.0.0.6:0/5", "", "10.0.0.999:0/1", "1.2.3.4:70000/1"])
def test_never_an_ip_alone(addr):
    with pytest.raises(ConfigError):
        fence.instance_addr(addr)


def test_only_the_dead_hosts_watchers():
    watchers = ["10.0.0.5:0/11", "10.0.0.6:0/12", "v1:192.168.7.5:0/13", "10.0.0.5:0/0", "junk"]
    assert fence.instances_of_host(watchers, ["10.0.0.5", "192.168.7.5"]) == ["10.0.0.5:0/11",
                                                                              "192.168.7.5:0/13"]
    assert fence.instances_of_host(watchers, []) == []
