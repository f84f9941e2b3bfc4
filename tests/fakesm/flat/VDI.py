"""Stand-in of sm's VDI base class (constructor shape: VDI(sr, uuid) -> load)."""
import xmlrpc.client

import xs_errors


class VDI(object):
    def __init__(self, sr, uuid):
        self.sr = sr
        self.session = sr.session
        self.uuid = uuid
        self.location = uuid
        self.label = ''
        self.description = ''
        self.vdi_type = ''
        self.size = 0
        self.utilisation = 0
        self.read_only = False
        self.managed = True
        self.hidden = False
        self.deleted = False
        self.parent = ''
        self.sm_config_override = {}
        self.path = None
        self.load(uuid)

    def load(self, vdi_uuid) -> None:
        pass

    def create(self, sr_uuid, vdi_uuid, size) -> str:
        raise xs_errors.XenError('Unimplemented')

    def delete(self, sr_uuid, vdi_uuid, data_only=False) -> None:
        raise xs_errors.XenError('Unimplemented')

    def attach(self, sr_uuid, vdi_uuid) -> str:
        raise xs_errors.XenError('Unimplemented')

    def detach(self, sr_uuid, vdi_uuid) -> None:
        raise xs_errors.XenError('Unimplemented')

    def generate_config(self, sr_uuid, vdi_uuid) -> str:
        raise xs_errors.XenError('Unimplemented')

    def attach_from_config(self, sr_uuid, vdi_uuid) -> str:
        raise xs_errors.XenError('Unimplemented')

    def get_params(self):
        return xmlrpc.client.dumps(({'uuid': self.uuid, 'location': self.location}, ), "", True)
