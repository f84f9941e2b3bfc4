"""Stand-in for the bitarray package (python3-bitarray on dom0): sm's VDI module
imports it for changed-block tracking only, which these tests never use."""


class bitarray(object):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("bitarray is not installed in the test environment")
