"""Starts the moto AWS emulator on 127.0.0.1 for glbox's tests.

Prints the port it listens on as the first line of stdout, then serves until
its standard input closes (so it dies with the test process that started it).

The emulator is extended here where it lacks what glbox relies on; each
extension says which gap it fills.
"""

import logging
import os
import sys
import tempfile

# Without this, AmazonSSMManagedInstanceCore does not exist in the emulator.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
# The request recorder appends to a file, by default ./moto_recording: give
# each emulator its own, or parallel tests would count each other's calls.
RECORDING = tempfile.NamedTemporaryFile(prefix="glbox-moto-recording-", delete=False)
os.environ["MOTO_RECORDER_FILEPATH"] = RECORDING.name

from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto.ssm import models as ssm_models  # noqa: E402

UBUNTU_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id"
)
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{arch}"


def add_ubuntu_parameters():
    """Gap: moto serves Amazon Linux's public AMI parameters but not
    Canonical's Ubuntu 24.04 ones (and refuses to create parameters under
    /aws/service). Serve them, pointing at the emulator's Amazon Linux image
    of the same architecture, which DescribeImages knows."""
    original = ssm_models.ParameterDict._load_latest_amis

    def load_latest_amis(self):
        original(self)
        for ubuntu_arch, al_arch in (("amd64", "x86_64"), ("arm64", "arm64")):
            source = AL2023_PARAMETER.format(arch=al_arch)
            versions = dict.get(self, source)
            if not versions:
                continue
            template = versions[-1]
            name = UBUNTU_PARAMETER.format(arch=ubuntu_arch)
            dict.__getitem__(self, name).append(
                ssm_models.Parameter(
                    account_id=self.account_id,
                    name=name,
                    value=template.value,
                    parameter_type="String",
                    description=None,
                    allowed_pattern=None,
                    keyid=None,
                    last_modified_date=template.last_modified_date,
                    version=1,
                    data_type="aws:ec2:image",
                )
            )

    ssm_models.ParameterDict._load_latest_amis = load_latest_amis

    original_check = ssm_models.ParameterDict._check_loading_status

    def check_loading_status(self, key):
        # Canonical's names live outside the prefix that triggers loading.
        if str(key or "").startswith("/aws/service/canonical/") and not self.latest_amis_loaded:
            self._load_latest_amis()
            self.latest_amis_loaded = True
        original_check(self, key)

    ssm_models.ParameterDict._check_loading_status = check_loading_status


def main():
    # One access-log line per request would drown the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    add_ubuntu_parameters()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    sys.stdin.read()
    server.stop()
    os.unlink(RECORDING.name)


if __name__ == "__main__":
    main()
