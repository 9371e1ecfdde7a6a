"""Starts the moto AWS emulator on 127.0.0.1 for glbox's tests.

Prints the port it listens on as the first line of stdout, then serves until
its standard input closes (so it dies with the test process that started it).

The emulator is extended here where it lacks what glbox relies on; each
extension says which gap it fills.
"""

import re
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

import base64  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402

from moto.core.responses import ActionResult  # noqa: E402
from moto.core.utils import utcnow  # noqa: E402
from moto.ec2.models import ec2_backends  # noqa: E402
from moto.ec2.models.instances import InstanceBackend  # noqa: E402
from moto.ec2.responses.general import General  # noqa: E402
from moto.ec2.utils import Base64EncodedString  # noqa: E402
from moto.iam import models as iam_models  # noqa: E402
from moto.iam.exceptions import DeleteConflictException  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto.route53 import models as route53_models  # noqa: E402
from moto.ses import models as ses_models  # noqa: E402
from moto.ses.responses import EmailResponse  # noqa: E402
from moto.ssm import models as ssm_models  # noqa: E402
from moto.ssm.responses import SimpleSystemManagerResponse  # noqa: E402

# Tests steer the extensions below through this SSM parameter (a JSON
# object), set with the real PutParameter API:
#   "offline": true            -> DescribeInstanceInformation reports ConnectionLost
#   "invocations": [{"contains": TEXT, "status": S, "code": N,
#                    "stdout": TEXT, "stderr": TEXT}, ...]
#                              -> the first rule whose TEXT occurs in a command
#                                 (or in the base64 script it carries) decides
#                                 that command's invocation
#   "console": TEXT            -> GetConsoleOutput returns TEXT
#   "fresh_id_calls": N        -> the first N EC2 calls naming an id a create
#                                 call has just returned answer NotFound
#                                 (default FRESH_ID_CALLS; see
#                                 add_eventual_consistency)
#   "profile_propagation_s": S -> EC2 refuses an instance profile for S
#                                 seconds after it is made or changed
#                                 (default PROFILE_PROPAGATION_S; see
#                                 add_profile_propagation)
#   "ses_pending_polls": N     -> the first N GetIdentityVerificationAttributes
#                                 calls that report a domain identity say
#                                 Pending (and GetIdentityDkimAttributes says
#                                 Pending for its DKIM meanwhile); counted
#                                 afresh from each PutParameter of this
#                                 parameter
#   "timeline": {"scale": S, "boot_s": B, "agent_s": A, "download_s": D,
#                "install_s": I, "reconfigure_s": R, "gitlab_boot_s": G,
#                "check_s": C}
#                              -> a real box's minutes on a clock S times
#                                 faster (S simulated seconds per real
#                                 second; the others are simulated seconds,
#                                 missing ones take TIMELINE_BOOT_S 40,
#                                 TIMELINE_AGENT_S 30, TIMELINE_DOWNLOAD_S 90,
#                                 TIMELINE_INSTALL_S 150,
#                                 TIMELINE_RECONFIGURE_S 180,
#                                 TIMELINE_GITLAB_BOOT_S 60, TIMELINE_CHECK_S 5;
#                                 scale defaults to 1): instances are pending
#                                 for B, SSM agents register A later,
#                                 bootstraps run D + I + R, GitLab answers G
#                                 after, health checks take C (see
#                                 add_timeline). Without it nothing waits.
BEHAVIOUR_PARAMETER = "/glbox-test/behaviour"
# Where tests put the behaviour parameter (their deployment's region). SES
# may be asked in another region: its extensions read it from here.
BEHAVIOUR_REGION = "us-east-1"

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


def behaviour(account_id, region):
    backend = ssm_models.ssm_backends[account_id][region]
    parameter = backend.get_parameter(BEHAVIOUR_PARAMETER)
    return json.loads(parameter.value) if parameter else {}


def behaviour_parameter(account_id, region):
    """The behaviour parameter itself (for its version), or None."""
    return ssm_models.ssm_backends[account_id][region].get_parameter(BEHAVIOUR_PARAMETER)


def add_instance_information():
    """Gap: DescribeInstanceInformation answers HTTP 500. Serve it: every
    running EC2 instance has an Online agent (unless the test says
    "offline"). Filters on InstanceIds are honoured."""

    def describe_instance_information(self):
        wanted = set()
        for key in ("Filters", "InstanceInformationFilterList"):
            for item in self._get_param(key, []) or []:
                if item.get("Key") in ("InstanceIds", "instanceIds"):
                    wanted.update(item.get("Values") or item.get("valueSet") or [])
        ping = "ConnectionLost" if behaviour(self.current_account, self.region).get("offline") else "Online"
        ec2 = ec2_backends[self.current_account][self.region]
        items = []
        for instance in ec2.all_instances():
            if instance.state != "running" or (wanted and instance.id not in wanted):
                continue
            items.append(
                {
                    "InstanceId": instance.id,
                    "PingStatus": ping,
                    "LastPingDateTime": utcnow(),
                    "AgentVersion": "3.3.0.0",
                    "PlatformType": "Linux",
                    "ResourceType": "EC2Instance",
                }
            )
        return ActionResult({"InstanceInformationList": items})

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information


CANCELLED = set()


def decoded_script(command):
    """glbox sends scripts as `echo '<base64>' | base64 -d > file`: match
    rules against the script itself as well as the command around it."""
    if "echo '" in command and "' | base64 -d" in command:
        encoded = command.split("echo '", 1)[1].split("' | base64 -d", 1)[0]
        try:
            return command + "\n" + base64.b64decode(encoded).decode("utf-8", "replace")
        except ValueError:
            pass
    return command


# GetCommandInvocation keeps only the start of what a command printed:
# "StandardOutputContent: The first 24,000 characters written by the plugin
# to stdout" and "StandardErrorContent: The first 8,000 characters written
# by the plugin to stderr"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html).
# The full output exists only on the box (or in S3/CloudWatch when asked for).
SSM_STDOUT_CHARACTERS = 24000
SSM_STDERR_CHARACTERS = 8000


def cut_as_ssm_does(invocation):
    """Every invocation's output, scripted or executed, is cut here, in one
    place, the way GetCommandInvocation cuts it."""
    for key, limit in (
        ("StandardOutputContent", SSM_STDOUT_CHARACTERS),
        ("StandardErrorContent", SSM_STDERR_CHARACTERS),
    ):
        if isinstance(invocation.get(key), str):
            invocation[key] = invocation[key][:limit]
    return invocation


def add_invocation_outcomes():
    """Gap: SendCommand never runs anything, and every invocation reports
    Success with empty output. Let a test choose the outcome per script.
    Gap: CancelCommand answers HTTP 500; serve it (the command then reports
    Cancelled)."""
    original = SimpleSystemManagerResponse.get_command_invocation

    def cancel_command(self):
        CANCELLED.add(self._get_param("CommandId"))
        return ActionResult({})

    def get_command_invocation(self):
        result = original(self)
        invocation = dict(result.result)
        command_id = self._get_param("CommandId")
        if command_id in CANCELLED:
            invocation.update({"Status": "Cancelled", "StatusDetails": "Cancelled", "ResponseCode": -1})
            return ActionResult(cut_as_ssm_does(invocation))
        command = self.ssm_backend.get_command_by_id(command_id)
        script = decoded_script("\n".join(command.parameters.get("commands", [])))
        for rule in behaviour(self.current_account, self.region).get("invocations", []):
            if rule["contains"] in script:
                status = rule.get("status", "Success")
                invocation.update(
                    {
                        "Status": status,
                        "StatusDetails": status,
                        "ResponseCode": rule.get("code", 0 if status == "Success" else 1),
                        "StandardOutputContent": rule.get("stdout", ""),
                        "StandardErrorContent": rule.get("stderr", ""),
                    }
                )
                break
        return ActionResult(cut_as_ssm_does(invocation))

    SimpleSystemManagerResponse.get_command_invocation = get_command_invocation
    SimpleSystemManagerResponse.cancel_command = cancel_command


def add_console_output():
    """Gap: GetConsoleOutput always returns the same Xen boot log. Let a
    test provide the console text (cloud-init prints host keys there)."""
    original = General.get_console_output

    def get_console_output(self):
        text = behaviour(self.current_account, self.region).get("console")
        if text is None:
            return original(self)
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        if instance.id in BOOTED_AGAIN:
            text = without_host_keys(text)
        return ActionResult(
            {
                "InstanceId": instance.id,
                "Timestamp": utcnow(),
                "Output": Base64EncodedString.from_raw_string(text),
            }
        )

    General.get_console_output = get_console_output


# cloud-init prints the SSH host keys to the console once per instance:
# cloudinit/config/cc_keys_to_console.py (github.com/canonical/cloud-init)
# runs with frequency PER_INSTANCE, between "-----BEGIN SSH HOST KEY
# KEYS-----" and "-----END SSH HOST KEY KEYS-----". GetConsoleOutput holds
# the output of the instance's latest boot only ("the most recent 64 KB",
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetConsoleOutput.html),
# so after a stop/start or a reboot the key block is gone.
BOOTED_AGAIN = set()
HOST_KEYS_BEGIN = "-----BEGIN SSH HOST KEY KEYS-----"
HOST_KEYS_END = "-----END SSH HOST KEY KEYS-----"


def without_host_keys(text):
    if HOST_KEYS_BEGIN not in text:
        return text
    before, rest = text.split(HOST_KEYS_BEGIN, 1)
    after = rest.split(HOST_KEYS_END, 1)[1] if HOST_KEYS_END in rest else ""
    return before + after


def add_console_once_per_instance():
    """Gap: moto's console is the same at every boot. Note the instances
    started or rebooted after their first boot; their console (see
    add_console_output) no longer holds the host key block."""
    original_start = InstanceBackend.start_instances
    original_reboot = InstanceBackend.reboot_instances

    def start_instances(self, instance_ids):
        BOOTED_AGAIN.update(instance_ids)
        return original_start(self, instance_ids)

    def reboot_instances(self, instance_ids):
        BOOTED_AGAIN.update(instance_ids)
        return original_reboot(self, instance_ids)

    InstanceBackend.start_instances = start_instances
    InstanceBackend.reboot_instances = reboot_instances


def is_domain(identity):
    return "@" not in identity


def dkim_domains(backend):
    """The domains of an SES backend for which VerifyDomainDkim was called."""
    if not hasattr(backend, "glbox_dkim_domains"):
        backend.glbox_dkim_domains = set()
    return backend.glbox_dkim_domains


# (account, behaviour parameter version) -> GetIdentityVerificationAttributes
# calls counted so far that reported a domain identity. The server answers
# requests on several threads: counted under the lock.
SES_POLLS = {}
SES_POLLS_LOCK = threading.Lock()


def ses_still_pending(account_id, count):
    """Whether SES should still call domain identities Pending under the
    test's "ses_pending_polls"; with `count`, this is one of the polls."""
    parameter = behaviour_parameter(account_id, BEHAVIOUR_REGION)
    if parameter is None:
        return False
    limit = json.loads(parameter.value).get("ses_pending_polls", 0)
    key = (account_id, parameter.version)
    with SES_POLLS_LOCK:
        seen = SES_POLLS.get(key, 0)
        if count:
            SES_POLLS[key] = seen + 1
    return seen < limit


def add_ses_dkim_state():
    """Gap: GetIdentityDkimAttributes reports DkimEnabled=true, status
    Success and three DKIM tokens for every domain identity, even when
    VerifyDomainDkim was never called. Real SES reports DkimEnabled=false,
    no tokens and NotStarted until VerifyDomainDkim turns on Easy DKIM for
    the domain. Track the VerifyDomainDkim calls per backend (forgotten
    with DeleteIdentity) and answer like SES."""
    original_verify = EmailResponse.verify_domain_dkim

    def verify_domain_dkim(self):
        result = original_verify(self)
        dkim_domains(self.backend).add(self._get_param("Domain").lower())
        return result

    original_attributes = ses_models.SESBackend.get_identity_dkim_attributes

    def get_identity_dkim_attributes(self, identities):
        result = original_attributes(self, identities)
        pending = ses_still_pending(self.account_id, count=False)
        for identity, attributes in result.items():
            if not is_domain(identity):
                continue
            if identity.lower() not in dkim_domains(self) or identity not in self.email_identities:
                attributes["DkimEnabled"] = False
                attributes["DkimVerificationStatus"] = "NotStarted"
                attributes.pop("DkimTokens", None)
            elif pending:
                attributes["DkimVerificationStatus"] = "Pending"
        return result

    original_delete = ses_models.SESBackend.delete_identity

    def delete_identity(self, identity):
        original_delete(self, identity)
        if identity not in self.email_identities:
            dkim_domains(self).discard(identity.lower())
            self.dkim_tokens.pop(identity, None)

    EmailResponse.verify_domain_dkim = verify_domain_dkim
    ses_models.SESBackend.get_identity_dkim_attributes = get_identity_dkim_attributes
    ses_models.SESBackend.delete_identity = delete_identity


def add_ses_pending_verification():
    """Gap: SES identities are verified the moment they are created
    (GetIdentityVerificationAttributes always says Success), so nothing
    that waits for the DNS records can be exercised. With the test's
    "ses_pending_polls": N, the first N calls that report a domain identity
    say Pending (DKIM too, see add_ses_dkim_state), then Success. The
    behaviour parameter is read in BEHAVIOUR_REGION whatever SES region is
    asked."""
    original = ses_models.SESBackend.get_identity_verification_attributes

    def get_identity_verification_attributes(self, identities=None):
        result = original(self, identities)
        if any(is_domain(identity) for identity in result):
            if ses_still_pending(self.account_id, count=True):
                for identity, attributes in result.items():
                    if is_domain(identity):
                        attributes["VerificationStatus"] = "Pending"
        return result

    ses_models.SESBackend.get_identity_verification_attributes = get_identity_verification_attributes


# SES regions whose Easy DKIM CNAMEs point at dkim.<region>.amazonses.com:
# the "Easy DKIM domains" table of the AWS General Reference (Amazon SES
# endpoints and quotas, https://docs.aws.amazon.com/general/latest/gr/ses.html),
# as of late 2025. Elsewhere: dkim.amazonses.com.
REGIONAL_DKIM_DOMAINS = {
    "af-south-1", "ap-northeast-3", "ap-south-2", "ap-southeast-3", "ap-southeast-5", "ca-west-1",
    "eu-central-2", "eu-south-1", "il-central-1", "me-central-1", "us-gov-east-1",
}


def dkim_signing_domain(region):
    return f"dkim.{region}.amazonses.com" if region in REGIONAL_DKIM_DOMAINS else "dkim.amazonses.com"


def add_ses_dkim_records_check():
    """Gap: Easy DKIM reports Success whatever the DNS says. SES verifies a
    domain's DKIM only once `<token>._domainkey.<domain>` are CNAMEs of
    `<token>.<the region's Easy DKIM domain>` (SES developer guide, "Easy
    DKIM"; the domains per region in REGIONAL_DKIM_DOMAINS). When the account
    has a Route 53 hosted zone for the domain, DKIM stays Pending until all
    three CNAMEs there point at the region's domain. (Without such a zone
    the records are taken as published elsewhere, as before.)"""
    original = ses_models.SESBackend.get_identity_dkim_attributes

    def zones_for(account_id, domain):
        backend = route53_models.route53_backends[account_id]["global"]
        return [
            zone
            for zone in backend.zones.values()
            if domain == zone.name.rstrip(".") or domain.endswith("." + zone.name.rstrip("."))
        ]

    def published(zones, name, value):
        for zone in zones:
            for rrset in zone.rrsets:
                if rrset.type == "CNAME" and rrset.name.rstrip(".") == name:
                    values = [str(v).rstrip(".") for v in rrset.records]
                    if value in values:
                        return True
        return False

    def get_identity_dkim_attributes(self, identities):
        result = original(self, identities)
        for identity, attributes in result.items():
            if not is_domain(identity) or attributes.get("DkimVerificationStatus") != "Success":
                continue
            zones = zones_for(self.account_id, identity.lower())
            if not zones:
                continue
            target = dkim_signing_domain(self.region_name)
            tokens = attributes.get("DkimTokens") or []
            if not all(published(zones, f"{t}._domainkey.{identity.lower()}", f"{t}.{target}") for t in tokens):
                attributes["DkimVerificationStatus"] = "Pending"
        return result

    ses_models.SESBackend.get_identity_dkim_attributes = get_identity_dkim_attributes


def add_user_delete_conflict():
    """Gap: DeleteUser succeeds while the user still has access keys (they
    are left behind, orphaned). Real IAM refuses with DeleteConflict until
    every access key is deleted."""
    original = iam_models.IAMBackend.delete_user

    def delete_user(self, user_name):
        if self.get_user(user_name).get_all_access_keys():
            raise DeleteConflictException("Cannot delete entity, must delete access keys first.")
        original(self, user_name)

    iam_models.IAMBackend.delete_user = delete_user


def add_user_permissions_boundary():
    """Gap: CreateUser ignores PermissionsBoundary, GetUser returns none, and
    PutUserPermissionsBoundary / DeleteUserPermissionsBoundary answer HTTP
    500 (moto/iam/models.py: "ToDo: add put_user_permissions_boundary()").
    IAM keeps a user's boundary as it keeps a role's, and returns it in
    GetUser's User.PermissionsBoundary:
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPermissionsBoundary.html
    https://docs.aws.amazon.com/IAM/latest/APIReference/API_User.html"""
    from moto.core.responses import EmptyResult
    from moto.iam.responses import IamResponse

    iam_models.User.permissions_boundary_arn = None
    iam_models.User.permissions_boundary = property(
        lambda self: {
            "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
            "PermissionsBoundaryArn": self.permissions_boundary_arn,
        }
        if self.permissions_boundary_arn
        else None
    )
    original_create_user = IamResponse.create_user

    def create_user(self):
        result = original_create_user(self)
        boundary = self._get_param("PermissionsBoundary")
        if boundary:
            self.backend.get_user(self._get_param("UserName")).permissions_boundary_arn = boundary
        return result

    def put_user_permissions_boundary(self):
        user = self.backend.get_user(self._get_param("UserName"))
        user.permissions_boundary_arn = self._get_param("PermissionsBoundary")
        return EmptyResult()

    def delete_user_permissions_boundary(self):
        self.backend.get_user(self._get_param("UserName")).permissions_boundary_arn = None
        return EmptyResult()

    IamResponse.create_user = create_user
    IamResponse.put_user_permissions_boundary = put_user_permissions_boundary
    IamResponse.delete_user_permissions_boundary = delete_user_permissions_boundary


def add_route53_zone_ids():
    """Gap: hosted zone ids are 22 random characters from any letter
    (S9VQLU39..., say), while Route 53's always start with Z
    (Z0123456789ABCDEFGHIJ), which is what glbox accepts in
    email.route53_zone_id. Make them start with Z."""
    original = route53_models.HostedZoneIdentifier.generate

    def generate(self, existing_ids=None, tags=None):
        while True:
            zone_id = "Z" + original(self, existing_ids=existing_ids, tags=tags)[1:]
            if zone_id not in (existing_ids or []):
                return zone_id

    route53_models.HostedZoneIdentifier.generate = generate


# How many GetChange calls report a change PENDING before INSYNC.
ROUTE53_PENDING_POLLS = 2


def add_route53_change_status():
    """Gap: ChangeResourceRecordSets answers every batch with the same change
    id (/change/C2682N5HXP0BZ4), already INSYNC, and GetChange says INSYNC
    for any id, made up or not. Route 53 answers a new batch with its own
    change id in status PENDING; GetChange reports PENDING until all of
    Route 53's authoritative servers have the change, then INSYNC, and
    answers NoSuchChange (HTTP 404) for an id it never gave out.
    https://docs.aws.amazon.com/Route53/latest/APIReference/API_ChangeResourceRecordSets.html
    https://docs.aws.amazon.com/Route53/latest/APIReference/API_GetChange.html
    Here a change stays PENDING for ROUTE53_PENDING_POLLS GetChange calls."""
    from moto.route53.exceptions import Route53ClientError
    from moto.route53.responses import Route53

    pending = {}
    lock = threading.Lock()
    counter = [0]
    original_change = Route53.change_resource_record_sets

    def change_resource_record_sets(self):
        result = original_change(self)
        with lock:
            counter[0] += 1
            change_id = f"/change/C{counter[0]:012d}GLBOX"
            pending[change_id] = ROUTE53_PENDING_POLLS
        info = result.result["ChangeInfo"]
        info["Id"] = change_id
        info["Status"] = "PENDING"
        return result

    def get_change(self):
        change_id = self._get_param("Id")
        if not change_id.startswith("/change/"):
            change_id = "/change/" + change_id
        with lock:
            if change_id not in pending:
                # The status (404) comes from the error's shape in the API model.
                raise Route53ClientError(
                    "NoSuchChange",
                    f"A change with the specified change ID does not exist: {change_id}",
                )
            status = "PENDING" if pending[change_id] > 0 else "INSYNC"
            pending[change_id] = max(0, pending[change_id] - 1)
        return ActionResult(
            {"ChangeInfo": {"Id": change_id, "Status": status, "SubmittedAt": utcnow()}}
        )

    Route53.change_resource_record_sets = change_resource_record_sets
    Route53.get_change = get_change


def add_robust_model_data():
    """Gap: GET /moto-api/data.json (the emulator's state, which tests read
    the secrets of access keys from) answers HTTP 500 once an IAM user was
    deleted: it lists every model instance ever made, and a deleted user's
    `group_list` property raises NoSuchEntity. Skip attributes that raise,
    as moto already skips those that do not serialize. (Deleted instances
    are still listed, as before.)"""
    from moto.core.model_instances import model_data
    from moto.moto_api._internal import urls as moto_api_urls
    from moto.moto_api._internal.responses import MotoAPIResponse

    def readable(instance, attr):
        try:
            value = getattr(instance, attr)
            json.dumps(value)
            return True, value
        except Exception:  # noqa: BLE001 - whatever a property raises
            return False, None

    def model_data_view(self, request, full_url, headers):
        results = {}
        for service in sorted(model_data):
            models = model_data[service]
            results[service] = {}
            for name in sorted(models):
                results[service][name] = []
                for instance in models[name].instances_tracked:
                    entry = {}
                    for attr in dir(instance):
                        if attr.startswith("_"):
                            continue
                        ok, value = readable(instance, attr)
                        if ok:
                            entry[attr] = value
                    results[service][name].append(entry)
        return 200, {"Content-Type": "application/javascript"}, json.dumps(results)

    MotoAPIResponse.model_data = model_data_view
    moto_api_urls.url_paths["{0}/moto-api/data.json"] = moto_api_urls.response_instance.model_data


# (account, region, action, ClientToken) -> (the request's parameters, the
# first answer).
CLIENT_TOKENS = {}


def add_serial_recording():
    """Gap: the request recorder appends each request from the thread that
    serves it, unlocked; concurrent requests (a lab's) interleave their
    lines. Record one request at a time."""
    from moto.moto_api._internal.recorder.models import Recorder

    original = Recorder._record_request
    lock = threading.Lock()

    def record_request(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    Recorder._record_request = record_request


SPOT_LAUNCHED = {}


def add_instance_counts():
    """Gap: RunInstances launches MinCount instances and ignores MaxCount;
    AWS launches as many as it can up to MaxCount. Serve MaxCount. A test
    can limit spot capacity with {"spot_capacity": N} (instances in all;
    beyond it spot requests launch fewer, then fail with
    InsufficientInstanceCapacity, as AWS does when spot has none)."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.instances import InstanceResponse

    original = InstanceResponse.run_instances

    def run_instances(self):
        wanted = int(self._get_param("MaxCount", if_none="1"))
        least = int(self._get_param("MinCount", if_none="1"))
        options = self._get_param("InstanceMarketOptions") or {}
        spot = isinstance(options, dict) and options.get("MarketType") == "spot"
        limit = behaviour(self.current_account, self.region).get("spot_capacity")
        key = (self.current_account, self.region)
        if spot and limit is not None:
            wanted = min(wanted, int(limit) - SPOT_LAUNCHED.get(key, 0))
            if wanted < max(least, 1):
                raise EC2ClientError(
                    "InsufficientInstanceCapacity",
                    "There is no Spot capacity available that matches your request.",
                )
        if self.automated_parameter_parsing:
            self.params["MinCount"] = wanted
        else:
            self.querystring["MinCount"] = [str(wanted)]
        answer = original(self)
        if spot:
            SPOT_LAUNCHED[key] = SPOT_LAUNCHED.get(key, 0) + wanted
        return answer

    InstanceResponse.run_instances = run_instances


def add_client_tokens():
    """Gap: RunInstances and CreateVolume ignore ClientToken, so a request
    the SDK sends again (its answer was lost) makes a second instance or
    volume. EC2 answers a repeated token with the first call's result, and
    the same token with other parameters with IdempotentParameterMismatch."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.ec2.responses.instances import InstanceResponse

    def idempotent(original, action):
        def call(self):
            token = self._get_param("ClientToken")
            if not token:
                return original(self)
            parameters = sorted(
                (key, tuple(values))
                for key, values in self.querystring.items()
                if key not in ("ClientToken", "Action", "Version")
            )
            key = (self.current_account, self.region, action, token)
            if key in CLIENT_TOKENS:
                first_parameters, first_answer = CLIENT_TOKENS[key]
                if first_parameters != parameters:
                    raise EC2ClientError(
                        "IdempotentParameterMismatch",
                        f"The client token {token} was used with different parameters.",
                    )
                return first_answer
            answer = original(self)
            CLIENT_TOKENS[key] = (parameters, answer)
            return answer

        return call

    InstanceResponse.run_instances = idempotent(InstanceResponse.run_instances, "RunInstances")
    ElasticBlockStore.create_volume = idempotent(ElasticBlockStore.create_volume, "CreateVolume")

def add_doctor_answers():
    """Gap for `glbox doctor`: IAM's SimulatePrincipalPolicy is not
    implemented. Serve it: every simulated action is allowed unless the test
    lists it under "simulate_denied". (Service Quotas: see add_quotas.)"""
    from moto.iam.responses import IamResponse

    def simulate_principal_policy(self):
        denied = set(behaviour(self.current_account, "us-east-1").get("simulate_denied", []))
        resources = self._get_param("ResourceArns", []) or ["*"]
        results = []
        for action in self._get_param("ActionNames", []):
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resources[0],
                    "EvalDecision": "implicitDeny" if action in denied else "allowed",
                    "MissingContextValues": [],
                }
            )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    IamResponse.simulate_principal_policy = simulate_principal_policy


# The account's quotas, one source for Service Quotas' answers and for what
# AllocateAddress and RunInstances enforce. Service Quotas code -> (the
# behaviour key a test sets it with, AWS's default for a new account, name).
#   L-0263D0A3: "EC2-VPC Elastic IPs", 5 per Region (Amazon VPC quotas,
#     https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html;
#     also EC2 DescribeAccountAttributes vpc-max-elastic-ips).
#   L-1216C47A: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
#     instances", in vCPUs, default 5 (On-Demand Instance quotas,
#     https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html).
#   L-34B43A08: "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance
#     Requests", in vCPUs, default 5 (Spot Instance quotas,
#     https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html).
# A test's "eip_quota", "vcpu_quota" or "spot_vcpu_quota" wins; else the
# same keys in the JSON environment variable GLBOX_EMULATOR_QUOTAS (the
# harness's account, which asked for more vCPUs, like any account that
# runs GitLab boxes); else AWS's default. "quota_denied": true makes
# GetServiceQuota answer AccessDeniedException, as it does for a caller
# without servicequotas:GetServiceQuota.
QUOTAS = {
    "L-0263D0A3": ("eip_quota", 5, "EC2-VPC Elastic IPs"),
    "L-1216C47A": (
        "vcpu_quota",
        5,
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
    ),
    "L-34B43A08": (
        "spot_vcpu_quota",
        5,
        "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests",
    ),
}
EIP_QUOTA, VCPU_QUOTA, SPOT_VCPU_QUOTA = "L-0263D0A3", "L-1216C47A", "L-34B43A08"
# Instance families of the Standard vCPU quotas (the quota names above): the
# letters before the generation's digit. I also covers Im and Is (im4gn,
# is4gen); Inf, Trn, DL, HPC and Mac have quotas of their own.
STANDARD_FAMILIES = {"a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z"}


def quota_value(account_id, code):
    key, default, _ = QUOTAS[code]
    chosen = behaviour(account_id, BEHAVIOUR_REGION)
    if key in chosen:
        return int(chosen[key])
    account = json.loads(os.environ.get("GLBOX_EMULATOR_QUOTAS") or "{}")
    return int(account.get(key, default))


def is_standard_family(instance_type):
    family = ""
    for c in instance_type.split(".")[0]:
        if c.isdigit():
            break
        family += c
    return family in STANDARD_FAMILIES


def instance_vcpus(instance_type):
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return int(INSTANCE_TYPES.get(instance_type, {}).get("VCpuInfo", {}).get("DefaultVCpus", 1))


def standard_vcpus_running(backend, spot):
    """vCPUs of the region's pending and running Standard instances of one
    market: what counts against its quota."""
    used = 0
    for instance in backend.all_instances():
        if instance.state not in ("pending", "running"):
            continue
        if (instance.lifecycle == "spot") != spot or not is_standard_family(instance.instance_type):
            continue
        used += instance_vcpus(instance.instance_type)
    return used


def add_quotas():
    """Gaps: Service Quotas knows no EC2 quota, AllocateAddress allocates
    without end, and RunInstances launches any number of vCPUs. Serve the
    account's quotas (QUOTAS above) and enforce them as AWS documents:
    - AllocateAddress beyond the Elastic IP quota: AddressLimitExceeded
      ("The maximum number of addresses has been reached", EC2 error codes,
      https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html).
    - RunInstances whose MaxCount would take the Standard instances past the
      vCPU quota fails as a whole (RunInstances, MaxCount: "Between 1 and
      the quota for the number of instances allowed for the instance type
      in your account for this Region", API_RunInstances): on-demand with
      VcpuLimitExceeded, spot with MaxSpotInstanceCountExceeded (EC2 error
      codes; Spot Instance quotas: "Max spot instance count exceeded")."""
    from moto.core.exceptions import JsonRESTError
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
    from moto.ec2.responses.account_attributes import AccountAttributes
    from moto.ec2.responses.instances import InstanceResponse
    from moto.servicequotas.models import ServiceQuotasBackend

    original_quota = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self, service_code, quota_code):
        if service_code == "ec2" and behaviour(self.account_id, BEHAVIOUR_REGION).get("quota_denied"):
            raise JsonRESTError(
                "AccessDeniedException",
                "User is not authorized to perform: servicequotas:GetServiceQuota",
            )
        if service_code == "ec2" and quota_code in QUOTAS:
            return {
                "ServiceCode": "ec2",
                "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaCode": quota_code,
                "QuotaName": QUOTAS[quota_code][2],
                "Value": float(quota_value(self.account_id, quota_code)),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        return original_quota(self, service_code, quota_code)

    original_allocate = ElasticAddressBackend.allocate_address

    def allocate_address(self, domain, address=None, tags=None):
        if len(self.addresses) >= quota_value(self.account_id, EIP_QUOTA):
            raise EC2ClientError("AddressLimitExceeded", "The maximum number of addresses has been reached.")
        return original_allocate(self, domain, address=address, tags=tags)

    original_attributes = AccountAttributes.describe_account_attributes

    def describe_account_attributes(self):
        result = original_attributes(self)
        limit = str(quota_value(self.current_account, EIP_QUOTA))
        for attribute in result.result["AccountAttributes"]:
            if attribute["AttributeName"] in ("vpc-max-elastic-ips", "max-elastic-ips"):
                attribute["AttributeValues"] = [{"AttributeValue": limit}]
        return result

    original_run = InstanceResponse.run_instances

    def run_instances(self):
        instance_type = self._get_param("InstanceType") or "m1.small"
        options = self._get_param("InstanceMarketOptions") or {}
        spot = isinstance(options, dict) and options.get("MarketType") == "spot"
        if is_standard_family(instance_type) and not self._get_bool_param("DryRun", False):
            wanted = int(self._get_param("MaxCount", if_none="1")) * instance_vcpus(instance_type)
            limit = quota_value(self.current_account, SPOT_VCPU_QUOTA if spot else VCPU_QUOTA)
            if standard_vcpus_running(self.ec2_backend, spot) + wanted > limit:
                if spot:
                    raise EC2ClientError("MaxSpotInstanceCountExceeded", "Max spot instance count exceeded")
                raise EC2ClientError(
                    "VcpuLimitExceeded",
                    f"You have requested more vCPU capacity than your current vCPU limit of {limit} "
                    "allows for the instance bucket that the specified instance type belongs to. "
                    "Please visit http://aws.amazon.com/contact-us/ec2-request to request an "
                    "adjustment to this limit.",
                )
        return original_run(self)

    ServiceQuotasBackend.get_service_quota = get_service_quota
    ElasticAddressBackend.allocate_address = allocate_address
    AccountAttributes.describe_account_attributes = describe_account_attributes
    InstanceResponse.run_instances = run_instances


def add_default_vpc_internet():
    """Gap: the default VPC has no internet gateway, and its main route
    table only the local route. AWS makes every default VPC with an
    internet gateway and a main route table whose 0.0.0.0/0 route goes to
    it (Default VPCs,
    https://docs.aws.amazon.com/vpc/latest/userguide/default-vpc.html).
    Make it so. (Subnets already assign public IPv4 addresses at launch as
    MapPublicIpOnLaunch says: true for default subnets, false for the
    others, unless the launch's network interface asks with
    AssociatePublicIpAddress; VPC IP addressing,
    https://docs.aws.amazon.com/vpc/latest/userguide/vpc-ip-addressing.html.)"""
    from moto.ec2.models.vpcs import VPCBackend

    original = VPCBackend.create_default_vpc

    def create_default_vpc(self):
        vpc = original(self)
        gateway = self.create_internet_gateway()
        self.attach_internet_gateway(gateway.id, vpc.id)
        for table in self.describe_route_tables(filters={"vpc-id": [vpc.id], "association.main": ["true"]}):
            self.create_route(table.id, "0.0.0.0/0", gateway_id=gateway.id)
        return vpc

    VPCBackend.create_default_vpc = create_default_vpc


def add_launch_network_interfaces():
    """Gap: an instance launched with a network interface specification
    (RunInstances NetworkInterface.1.SubnetId, .Groups,
    .AssociatePublicIpAddress) lands in a random zone and reports no
    security groups. EC2 places it in the interface's subnet (and zone) and
    reports the interface's groups as the instance's: the interface carries
    the subnet and groups then, instead of SubnetId and SecurityGroupIds
    (API_RunInstances, NetworkInterfaces; InstanceNetworkInterfaceSpecification,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceNetworkInterfaceSpecification.html).
    Hand the primary interface's subnet and groups to the instance."""
    from moto.ec2.models.instances import InstanceBackend

    original = InstanceBackend.run_instances

    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        primary = [n for n in kwargs.get("nics") or [] if str(n.get("DeviceIndex")) == "0"]
        if primary and primary[0].get("SubnetId") and not kwargs.get("subnet_id"):
            nic = primary[0]
            kwargs["subnet_id"] = nic.pop("SubnetId")
            groups = nic.pop("Groups", None) or []
            kwargs["security_group_ids"] = list(kwargs.get("security_group_ids") or []) + list(groups)
        return original(self, image_id, count, user_data, security_group_names, **kwargs)

    InstanceBackend.run_instances = run_instances


def canned_version(script):
    """The version a bootstrap that succeeded reports: the pinned
    GLBOX_VERSION it was sent, or for "latest" what the sandbox's package
    manager installs (tests/it/common/sandbox.rs), so that glbox's recorded
    version (the glbox:gitlab-version tag) is one a real box could have."""
    match = re.search(r"^GLBOX_VERSION='([0-9.]+)'$", script, re.MULTILINE)
    return match.group(1) if match else "18.6.0"


def add_bootstrap_result_line():
    """A bootstrap that succeeds prints its result line last
    (cloud-init/bootstrap.sh), and glbox counts it as done only then. The
    canned invocations above report Success with empty output for any
    command no rule matches; for a bootstrap, add the line a real run that
    succeeded would have printed, so that "no rule" still means "it
    worked". A rule's own stdout is kept as it is."""
    outcomes = SimpleSystemManagerResponse.get_command_invocation

    def get_command_invocation(self):
        result = outcomes(self)
        invocation = dict(result.result)
        command = self.ssm_backend.get_command_by_id(self._get_param("CommandId"))
        script = decoded_script("\n".join(command.parameters.get("commands", [])))
        rules = behaviour(self.current_account, self.region).get("invocations", [])
        matched = any(rule["contains"] in script for rule in rules)
        if (
            not matched
            and "# glbox bootstrap:" in script
            and invocation.get("Status") == "Success"
            and not invocation.get("StandardOutputContent")
        ):
            invocation["StandardOutputContent"] = "glbox-result: gitlab-ce %s\n" % canned_version(script)
            return ActionResult(invocation)
        return result

    SimpleSystemManagerResponse.get_command_invocation = get_command_invocation


# (CommandId, InstanceId) -> {"Status", "ResponseCode", "stdout", "stderr",
# "process"} of commands run in a test's sandbox.
SANDBOX_RUNS = {}
SANDBOX_LOCK = threading.Lock()


def add_sandbox_execution():
    """Gap: SendCommand runs nothing. With the test's {"sandbox": DIR}
    (a tests/it/common/sandbox.rs sandbox), SendCommand runs the command text
    for each target instance, as the SSM agent's AWS-RunShellScript does
    (`sh`, as root): through DIR/bin/sandbox-instance, which gives every
    instance its own state under DIR/instances/<id>/ and data volumes under
    DIR/volumes/<vol-id>/. Like SSM (Run Command, "Understanding command
    statuses" in the Systems Manager user guide), SendCommand answers at
    once; the invocation is InProgress while the command runs, then Success
    (exit status 0) or Failed, TimedOut after executionTimeout, Cancelled
    after CancelCommand. The output is cut as SSM cuts it
    (cut_as_ssm_does); rules under "invocations" still decide the commands
    they match."""
    import subprocess

    original_send = SimpleSystemManagerResponse.send_command
    invocation_of = SimpleSystemManagerResponse.get_command_invocation
    original_cancel = SimpleSystemManagerResponse.cancel_command

    def run(key, root, instance_id, command, timeout, endpoint):
        env = {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "SANDBOX_AWS_ENDPOINT": endpoint,
            "SANDBOX_PYTHON": sys.executable,
        }
        process = subprocess.Popen(
            [os.path.join(root, "bin", "sandbox-instance"), instance_id, command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        with SANDBOX_LOCK:
            SANDBOX_RUNS[key]["process"] = process
        try:
            stdout, stderr = process.communicate(timeout=timeout)
            status = "Success" if process.returncode == 0 else "Failed"
            code = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            stdout, stderr = process.communicate()
            status, code = "TimedOut", -1
        with SANDBOX_LOCK:
            run_state = SANDBOX_RUNS[key]
            if run_state["Status"] != "Cancelled":
                run_state.update({"Status": status, "ResponseCode": code})
            run_state["stdout"] = stdout.decode("utf-8", "replace")
            run_state["stderr"] = stderr.decode("utf-8", "replace")

    def send_command(self):
        result = original_send(self)
        root = behaviour(self.current_account, self.region).get("sandbox")
        if not root:
            return result
        command_id = result.result["Command"]["CommandId"]
        parameters = self._get_param("Parameters", {}) or {}
        text = "\n".join(parameters.get("commands", []))
        rules = behaviour(self.current_account, self.region).get("invocations", [])
        if any(rule["contains"] in decoded_script(text) for rule in rules):
            return result
        timeout = int((parameters.get("executionTimeout") or ["3600"])[0])
        # The box reads its parameters from this same emulator.
        endpoint = "http://" + (self.headers.get("Host") or "127.0.0.1")
        for instance_id in self._get_param("InstanceIds", []) or []:
            key = (command_id, instance_id)
            with SANDBOX_LOCK:
                SANDBOX_RUNS[key] = {"Status": "InProgress", "ResponseCode": -1, "stdout": "", "stderr": ""}
            threading.Thread(
                target=run,
                args=(key, root, instance_id, text, timeout, endpoint),
                daemon=True,
            ).start()
        return result

    def get_command_invocation(self):
        key = (self._get_param("CommandId"), self._get_param("InstanceId"))
        with SANDBOX_LOCK:
            state = dict(SANDBOX_RUNS.get(key) or {})
        result = invocation_of(self)
        if not state:
            return result
        invocation = dict(result.result)
        invocation.update(
            {
                "Status": state["Status"],
                "StatusDetails": state["Status"],
                "ResponseCode": state["ResponseCode"],
                "StandardOutputContent": state["stdout"],
                "StandardErrorContent": state["stderr"],
            }
        )
        return ActionResult(cut_as_ssm_does(invocation))

    def cancel_command(self):
        command_id = self._get_param("CommandId")
        with SANDBOX_LOCK:
            for (cid, _), state in SANDBOX_RUNS.items():
                if cid == command_id and state["Status"] == "InProgress":
                    state["Status"] = "Cancelled"
                    state["ResponseCode"] = -1
                    if state.get("process"):
                        os.killpg(state["process"].pid, 9)
        return original_cancel(self)

    SimpleSystemManagerResponse.send_command = send_command
    SimpleSystemManagerResponse.get_command_invocation = get_command_invocation
    SimpleSystemManagerResponse.cancel_command = cancel_command
# The emulator's defaults for AWS's documented delays: short, so that the
# whole suite runs in the stricter world without getting much slower.
FRESH_ID_CALLS = 1
FRESH_ID_WINDOW_S = 2.0
PROFILE_PROPAGATION_S = 1.0


def ec2_answer_error(status, code, message):
    from fault_proxy import ec2_error

    return ec2_error(status, code, message)


def add_eventual_consistency():
    """Gap: EC2 knows every id the moment a create call returns it. AWS
    documents that it may not ("Eventual consistency in the Amazon EC2 API",
    https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
    right after RunInstances, CreateSecurityGroup, AllocateAddress or
    CreateVolume, calls naming the new id may answer
    InvalidInstanceID.NotFound, InvalidGroup.NotFound,
    InvalidAllocationID.NotFound or InvalidVolume.NotFound. Here the first
    FRESH_ID_CALLS calls (or the test's "fresh_id_calls") naming a fresh id
    within FRESH_ID_WINDOW_S of its creation answer so. The rule is
    fault_proxy.FreshIds, which the proxy's not_found_fresh fault also uses."""
    from fault_proxy import FreshIds
    from moto.ec2.responses import EC2Response

    trackers = {}
    lock = threading.Lock()

    def tracker(account, region):
        calls = behaviour(account, region).get("fresh_id_calls", FRESH_ID_CALLS)
        with lock:
            key = (account, region, calls)
            if key not in trackers:
                trackers[key] = FreshIds(int(calls), FRESH_ID_WINDOW_S)
            return trackers[key]

    original = EC2Response.call_action

    def call_action(self):
        action = self._get_action()
        fresh = tracker(self.current_account, self.region)
        refusal = fresh.refusal(self.querystring)
        if refusal is not None:
            return ec2_answer_error(400, *refusal)
        status, headers, body = original(self)
        if status == 200:
            fresh.learn(action, body)
        return status, headers, body

    EC2Response.call_action = call_action


# (account, instance profile name) -> when it was last made or changed.
PROFILE_CHANGED = {}
PROFILE_ACTIONS = ("RunInstances", "AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation")


def add_profile_propagation():
    """Gap: EC2 accepts an instance profile the moment IAM has made it. AWS
    refuses a new or changed profile for seconds to minutes with
    InvalidParameterValue "Invalid IAM Instance Profile name", on
    RunInstances, AssociateIamInstanceProfile and
    ReplaceIamInstanceProfileAssociation (hashicorp/terraform-provider-aws
    PR #3055, issue #27516; IAM user guide, "Troubleshooting IAM roles": a
    new profile "might not be available" to EC2 right away). Here EC2
    refuses a profile for PROFILE_PROPAGATION_S (or the test's
    "profile_propagation_s") after CreateInstanceProfile,
    AddRoleToInstanceProfile or RemoveRoleFromInstanceProfile."""
    import time

    from moto.ec2.responses import EC2Response

    def changed(method):
        original = getattr(iam_models.IAMBackend, method)

        def call(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            name = kwargs.get("name") or kwargs.get("profile_name") or args[0]
            PROFILE_CHANGED[(self.account_id, name)] = time.monotonic()
            return result

        setattr(iam_models.IAMBackend, method, call)

    for method in ("create_instance_profile", "add_role_to_instance_profile", "remove_role_from_instance_profile"):
        changed(method)

    original = EC2Response.call_action

    def call_action(self):
        if self._get_action() in PROFILE_ACTIONS:
            name = (self.querystring.get("IamInstanceProfile.Name") or [None])[0]
            arn = (self.querystring.get("IamInstanceProfile.Arn") or [None])[0]
            name = name or (arn.rsplit("/", 1)[-1] if arn else None)
            since = PROFILE_CHANGED.get((self.current_account, name))
            window = behaviour(self.current_account, self.region).get(
                "profile_propagation_s", PROFILE_PROPAGATION_S
            )
            if since is not None and time.monotonic() - since < float(window):
                return ec2_answer_error(
                    400,
                    "InvalidParameterValue",
                    f"Value ({name}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name",
                )
        return original(self)

    EC2Response.call_action = call_action


# ModifyVolume, EC2 API reference
# (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyVolume.html):
# "After modifying a volume, you must wait at least six hours and ensure
# that the volume is in the in-use or available state before you can modify
# the same volume." The error: VolumeModificationRateExceeded ("Error codes
# for the Amazon EC2 API").
MODIFY_COOLDOWN_S = 6 * 60 * 60


def add_volume_modification_rate():
    """Gap: ModifyVolume modifies a volume as often as asked. EBS refuses a
    modification within six hours of the volume's last one, with
    VolumeModificationRateExceeded; DescribeVolumesModifications reports
    the last one's start time (moto keeps it)."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_block_store import Volume

    original = Volume.modify

    def modify(self, *args, **kwargs):
        if self.modifications:
            since = (utcnow() - self.modifications[-1].start_time).total_seconds()
            if since < MODIFY_COOLDOWN_S:
                raise EC2ClientError(
                    "VolumeModificationRateExceeded",
                    "You've reached the maximum modification rate per volume limit. "
                    "Wait at least 6 hours between modifications per EBS volume.",
                )
        return original(self, *args, **kwargs)

    Volume.modify = modify


def add_sandbox_snapshot_data():
    """Gap: in a test's sandbox ({"sandbox": DIR}, see add_sandbox_execution)
    a volume made from a snapshot holds nothing. On EBS a snapshot is a
    point-in-time copy of the volume's blocks, and "when you create a volume
    from a snapshot, the volume is an exact replica of the volume used to
    create the snapshot" ("Amazon EBS snapshots" and "Create a volume from a
    snapshot", Amazon EBS user guide; CreateVolume's SnapshotId,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html).
    Here CreateSnapshot copies DIR/volumes/<volume-id>/ (the volume's data
    as the sandbox's instances see it) to DIR/snapshots/<snapshot-id>/, and
    CreateVolume with a SnapshotId starts DIR/volumes/<new id>/ as that copy."""
    import shutil

    from moto.ec2.models.elastic_block_store import EBSBackend

    original_snapshot = EBSBackend.create_snapshot
    original_volume = EBSBackend.create_volume

    def sandbox_of(backend):
        return behaviour(backend.account_id, backend.region_name).get("sandbox")

    def copy(source, target):
        if os.path.isdir(source) and not os.path.exists(target):
            shutil.copytree(source, target, symlinks=True)

    def create_snapshot(self, volume_id, *args, **kwargs):
        snapshot = original_snapshot(self, volume_id, *args, **kwargs)
        root = sandbox_of(self)
        if root:
            copy(os.path.join(root, "volumes", volume_id), os.path.join(root, "snapshots", snapshot.id))
        return snapshot

    def create_volume(self, *args, **kwargs):
        volume = original_volume(self, *args, **kwargs)
        root = sandbox_of(self)
        if root and volume.snapshot_id:
            copy(os.path.join(root, "snapshots", volume.snapshot_id), os.path.join(root, "volumes", volume.id))
        return volume

    EBSBackend.create_snapshot = create_snapshot
    EBSBackend.create_volume = create_volume

def add_s3_versioning_root():
    """Gap: moto answers GetBucketVersioning with the root element
    <GetBucketVersioningResponse>; S3 answers <VersioningConfiguration>
    (API reference, GetBucketVersioning, Response Syntax:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketVersioning.html),
    and the Rust SDK refuses any other root. Rename it."""
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_versioning

    def get_bucket_versioning(self):
        status, headers, body = original(self)
        if isinstance(body, bytes):
            body = body.decode()
        body = body.replace("<GetBucketVersioningResponse", "<VersioningConfiguration").replace(
            "</GetBucketVersioningResponse>", "</VersioningConfiguration>"
        )
        return status, headers, body

    S3Response.get_bucket_versioning = get_bucket_versioning


def add_s3_secure_transport():
    """Gap: moto ignores a bucket policy's Bool conditions (it evaluates
    only the operators it knows, and holds the others true), so a statement
    denying requests where aws:SecureTransport is "false" denies every
    object request. The SDK reaches real S3 only over HTTPS (the emulator
    over HTTP on 127.0.0.1 stands in for it), where such a statement never
    applies
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-securetransport):
    evaluate the policy without the statements that apply only to
    requests without TLS."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def only_without_tls(statement):
        value = (statement.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
        return str(value).lower() == "false"

    def get_permission(self, action, resource):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        statements = document.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        document["Statement"] = [s for s in statements if not only_without_tls(s)]
        if not document["Statement"]:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps(document)).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission


# Amazon Data Lifecycle Manager, which moto does not emulate at all.
DLM_POLICIES = {}
DLM_LOCK = threading.Lock()
DLM_INTERVALS = {"HOURS": {1, 2, 3, 4, 6, 8, 12, 24}}
DLM_COPY_RETAIN_UNITS = {"DAYS", "WEEKS", "MONTHS", "YEARS"}


class DlmError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def dlm_invalid(message):
    return DlmError(400, "InvalidRequestException", message)


def dlm_check_details(details):
    """What CreateLifecyclePolicy and UpdateLifecyclePolicy validate of a
    custom EBS snapshot policy (API reference, PolicyDetails, Schedule,
    CreateRule, RetainRule, CrossRegionCopyRule:
    https://docs.aws.amazon.com/dlm/latest/APIReference/API_PolicyDetails.html
    https://docs.aws.amazon.com/dlm/latest/APIReference/API_CreateRule.html
    https://docs.aws.amazon.com/dlm/latest/APIReference/API_RetainRule.html
    https://docs.aws.amazon.com/dlm/latest/APIReference/API_CrossRegionCopyRule.html)."""
    import re

    if not isinstance(details, dict):
        raise dlm_invalid("PolicyDetails is required")
    if details.get("PolicyType", "EBS_SNAPSHOT_MANAGEMENT") != "EBS_SNAPSHOT_MANAGEMENT":
        raise dlm_invalid("only EBS_SNAPSHOT_MANAGEMENT policies are modelled")
    types = details.get("ResourceTypes") or []
    if not types or any(t not in ("VOLUME", "INSTANCE") for t in types):
        raise dlm_invalid("ResourceTypes must be VOLUME or INSTANCE")
    tags = details.get("TargetTags") or []
    if not 1 <= len(tags) <= 50 or any(not t.get("Key") or "Value" not in t for t in tags):
        raise dlm_invalid("TargetTags: 1 to 50 tags, each with Key and Value")
    schedules = details.get("Schedules") or []
    if not 1 <= len(schedules) <= 4:
        raise dlm_invalid("Schedules: 1 to 4")
    for schedule in schedules:
        rule = schedule.get("CreateRule") or {}
        if "CronExpression" not in rule:
            if rule.get("IntervalUnit") != "HOURS" or rule.get("Interval") not in DLM_INTERVALS["HOURS"]:
                raise dlm_invalid("CreateRule: Interval must be 1, 2, 3, 4, 6, 8, 12 or 24 HOURS")
            times = rule.get("Times") or []
            if len(times) > 1 or any(not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", t) for t in times):
                raise dlm_invalid("CreateRule.Times: at most one time, \"hh:mm\" (UTC)")
        retain = schedule.get("RetainRule") or {}
        count = retain.get("Count")
        if count is not None and not 1 <= int(count) <= 1000:
            raise dlm_invalid("RetainRule.Count must be 1 to 1000")
        if count is None and "Interval" not in retain:
            raise dlm_invalid("RetainRule needs Count or Interval")
        copies = schedule.get("CrossRegionCopyRules") or []
        if len(copies) > 3:
            raise dlm_invalid("CrossRegionCopyRules: at most 3")
        for copy in copies:
            if "Encrypted" not in copy or not (copy.get("TargetRegion") or copy.get("Target")):
                raise dlm_invalid("CrossRegionCopyRule needs Encrypted and TargetRegion")
            keep = copy.get("RetainRule")
            if keep is not None and (keep.get("IntervalUnit") not in DLM_COPY_RETAIN_UNITS or int(keep.get("Interval", 0)) < 1):
                raise dlm_invalid("CrossRegionCopyRetainRule: Interval >= 1 DAYS, WEEKS, MONTHS or YEARS")


def dlm_handle(method, path, query, body, account, region):
    """One DLM REST request (API reference, Actions:
    https://docs.aws.amazon.com/dlm/latest/APIReference/API_Operations.html):
    CreateLifecyclePolicy (POST /policies), GetLifecyclePolicies
    (GET /policies, filtered by targetTags "key=value" and resourceTypes, a
    policy matching when it targets any of the tags asked), GetLifecyclePolicy
    (GET /policies/ID), UpdateLifecyclePolicy (PATCH /policies/ID),
    DeleteLifecyclePolicy (DELETE /policies/ID), ListTagsForResource and
    TagResource (/tags/ARN). Returns (status, body dict)."""
    import urllib.parse
    import uuid

    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/") if p]
    mine = {k: v for k, v in DLM_POLICIES.items() if v["account"] == account and v["region"] == region}
    if parts == ["policies"] and method == "POST":
        for field in ("ExecutionRoleArn", "Description", "State", "PolicyDetails"):
            if field not in body:
                raise dlm_invalid(f"{field} is required")
        if not str(body["ExecutionRoleArn"]).startswith("arn:"):
            raise dlm_invalid("ExecutionRoleArn is not an ARN")
        if body["State"] not in ("ENABLED", "DISABLED"):
            raise dlm_invalid("State must be ENABLED or DISABLED")
        dlm_check_details(body["PolicyDetails"])
        policy_id = "policy-" + uuid.uuid4().hex[:17]
        now = utcnow().isoformat() + "Z"
        DLM_POLICIES[policy_id] = {
            "account": account,
            "region": region,
            "PolicyId": policy_id,
            "PolicyArn": f"arn:aws:dlm:{region}:{account}:policy/{policy_id}",
            "Description": body["Description"],
            "State": body["State"],
            "ExecutionRoleArn": body["ExecutionRoleArn"],
            "PolicyDetails": body["PolicyDetails"],
            "Tags": dict(body.get("Tags") or {}),
            "DateCreated": now,
            "DateModified": now,
        }
        return 200, {"PolicyId": policy_id}
    if parts == ["policies"] and method == "GET":
        wanted = query.get("targetTags", [])
        kinds = query.get("resourceTypes", [])
        summaries = []
        for policy in mine.values():
            details = policy["PolicyDetails"]
            targets = {f"{t['Key']}={t['Value']}" for t in details.get("TargetTags", [])}
            if wanted and not targets.intersection(wanted):
                continue
            if kinds and not set(details.get("ResourceTypes", [])).intersection(kinds):
                continue
            summaries.append({k: policy[k] for k in ("PolicyId", "Description", "State", "Tags")} | {"PolicyType": "EBS_SNAPSHOT_MANAGEMENT"})
        return 200, {"Policies": summaries}
    if len(parts) == 2 and parts[0] == "policies":
        policy = mine.get(parts[1])
        if policy is None:
            raise DlmError(404, "ResourceNotFoundException", f"Policy {parts[1]} not found")
        if method == "GET":
            shown = {k: v for k, v in policy.items() if k not in ("account", "region")}
            return 200, {"Policy": shown}
        if method == "PATCH":
            if "PolicyDetails" in body:
                dlm_check_details(body["PolicyDetails"])
            for field in ("ExecutionRoleArn", "State", "Description", "PolicyDetails"):
                if field in body:
                    policy[field] = body[field]
            policy["DateModified"] = utcnow().isoformat() + "Z"
            return 200, {}
        if method == "DELETE":
            del DLM_POLICIES[parts[1]]
            return 200, {}
    if len(parts) >= 2 and parts[0] == "tags":
        arn = "/".join(parts[1:])
        policy = next((p for p in mine.values() if p["PolicyArn"] == arn), None)
        if policy is None:
            raise DlmError(404, "ResourceNotFoundException", f"{arn} not found")
        if method == "GET":
            return 200, {"Tags": policy["Tags"]}
        if method == "POST":
            policy["Tags"].update(body.get("Tags") or {})
            return 200, {}
    raise DlmError(400, "InvalidRequestException", f"{method} {path} is not modelled")


def add_dlm():
    """Gap: moto has no Data Lifecycle Manager. Requests signed for the
    "dlm" service are answered here, before moto's dispatcher, by the small
    model above (recorded like any other request, so tests count them)."""
    import urllib.parse

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.request import Request
    from moto.moto_api import recorder
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from werkzeug.wrappers import Response

    original = DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/") if "Credential=" in auth else []
        if len(scope) < 4 or scope[3] != "dlm":
            return original(self, environ, start_response)
        request = Request(environ)
        recorder._record_request(request)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        account = DEFAULT_ACCOUNT_ID
        try:
            with DLM_LOCK:
                status, answer = dlm_handle(
                    request.method, environ.get("PATH_INFO", "/"), query, json.loads(raw or b"{}"), account, scope[2]
                )
            headers = {"Content-Type": "application/json"}
        except DlmError as e:
            status, answer = e.status, {"Message": e.message, "Code": e.code}
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": e.code}
        return Response(json.dumps(answer), status=status, headers=headers)(environ, start_response)

    DomainDispatcherApplication.__call__ = call


# The timeline's defaults, in simulated seconds: round figures of public
# measurements of a real box, not exact values.
# - An instance is "pending" from RunInstances or StartInstances until it
#   has booted ("pending: The instance is preparing to enter the running
#   state", EC2 user guide, Instance state changes,
#   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html):
#   about 40 s.
TIMELINE_BOOT_S = 40.0
# - Its SSM agent starts with the system and registers as a managed node
#   ("Checking SSM Agent status and starting the agent",
#   https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent-status-and-restart.html):
#   Online about 30 s after the instance runs.
TIMELINE_AGENT_S = 30.0
# - GitLab's Omnibus package (https://docs.gitlab.com/install/package/):
#   the gitlab-ce package, over a gigabyte, downloads in about 90 s, installs
#   (unpacks) in about 150 s, the first `gitlab-ctl reconfigure` takes
#   about 3 minutes, and Puma answers about a minute after that.
TIMELINE_DOWNLOAD_S = 90.0
TIMELINE_INSTALL_S = 150.0
TIMELINE_RECONFIGURE_S = 180.0
TIMELINE_GITLAB_BOOT_S = 60.0
# - A health check (a few curl calls and gitlab-ctl status) takes about 5 s.
TIMELINE_CHECK_S = 5.0
TIMELINE_DEFAULTS = {
    "scale": 1.0,
    "boot_s": TIMELINE_BOOT_S,
    "agent_s": TIMELINE_AGENT_S,
    "download_s": TIMELINE_DOWNLOAD_S,
    "install_s": TIMELINE_INSTALL_S,
    "reconfigure_s": TIMELINE_RECONFIGURE_S,
    "gitlab_boot_s": TIMELINE_GITLAB_BOOT_S,
    "check_s": TIMELINE_CHECK_S,
}
# CommandPlugin's Output: "Output of the plugin execution" is "the first
# 2,500 characters"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandPlugin.html).
SSM_PLUGIN_OUTPUT_CHARACTERS = 2500
# ListCommandInvocations' MaxResults: 1 to 50, default 50
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommandInvocations.html).
SSM_LIST_INVOCATIONS_PAGE = 50
# What the agent puts between a plugin's stdout and stderr in Output.
SSM_PLUGIN_ERROR_SEPARATOR = "\n----------ERROR-------\n"
FINAL_INVOCATION_STATUSES = ("Success", "Failed", "TimedOut", "Cancelled")

TIMELINE_LOCK = threading.RLock()
# instance id -> (instance, real moment of its RunInstances or StartInstances)
TIMELINE_BOOTING = {}
# instance id -> real moment of its RunInstances (the user data's prefetch
# runs on the first boot only)
TIMELINE_LAUNCHED = {}
# (command id, instance id) -> {"end": real moment, "kind": "bootstrap" | "check"}
TIMELINE_COMMANDS = {}
# instance id -> real moment GitLab answers on it (absent: booted long ago)
TIMELINE_GITLAB_UP = {}
# command id -> the InstanceIds its SendCommand named (moto's Command adds
# every instance of the region when the call has no Targets)
COMMAND_INSTANCES = {}


def timeline_of(wanted):
    """The behaviour's "timeline" in REAL seconds, or None without one."""
    if not isinstance(wanted, dict) or wanted.get("timeline") is None:
        return None
    values = {**TIMELINE_DEFAULTS, **wanted["timeline"]}
    scale = float(values.pop("scale")) or 1.0
    return {key: float(values[key]) / scale for key in TIMELINE_DEFAULTS if key != "scale"}


def timeline_settle():
    """Instances whose boot is over go from pending to running (only
    pending ones: a stop or termination meanwhile is moto's to answer)."""
    import time

    now = time.monotonic()
    with TIMELINE_LOCK:
        for instance_id, (instance, started, boot_s) in list(TIMELINE_BOOTING.items()):
            if instance._state.name != "pending":
                continue
            if now - started >= boot_s:
                instance._state.name = "running"
                instance._state.code = 16


def timeline_user_data(instance):
    """The instance's user data as text (moto keeps it base64-encoded)."""
    import gzip

    data = instance.user_data
    if isinstance(data, list):
        data = data[0] if data else None
    if data is None:
        return ""
    try:
        raw = base64.b64decode(str(data))
    except ValueError:
        return str(data)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except OSError:
            pass
    return raw.decode("utf-8", "replace")


def timeline_baked(ec2, image_id):
    """Does the instance's image carry glbox:image = baked?"""
    image = ec2.amis.get(image_id)
    if image is None:
        return False
    return any(tag.get("key") == "glbox:image" and tag.get("value") == "baked" for tag in image.get_tags())


def timeline_still_starting(text):
    """A health check's output while GitLab boots: nginx answers 502 with
    an empty body on liveness, readiness and health; every section keeps
    its header, status line and body line."""
    out, rewrite = [], 0
    for line in text.splitlines():
        if rewrite:
            out.append("502" if rewrite == 2 else "")
            rewrite -= 1
            continue
        out.append(line)
        if line.strip() in ("=== liveness", "=== readiness", "=== health"):
            rewrite = 2
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def add_timeline():
    """Gap: moto makes an instance running the moment RunInstances returns,
    has no SSM agent to wait for, and finishes every command at once, so
    the minutes a user waits on AWS do not exist. With the test's
    "timeline" (see BEHAVIOUR_PARAMETER; real seconds = simulated / scale,
    missing keys take the TIMELINE_* defaults):

    - EC2: an instance is "pending" (code 0) for boot_s after RunInstances
      or StartInstances, then "running" (16) ("pending: The instance is
      preparing to enter the running state",
      https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html).
      Each EC2 request (and each SSM one below) first moves instances whose
      boot is over to running; StopInstances and TerminateInstances end the
      tracking, and moto's own transitions apply.
    - SSM agent: DescribeInstanceInformation lists an instance only agent_s
      after its boot (before, it is not a managed node: absent)
      (https://docs.aws.amazon.com/systems-manager/latest/userguide/ssm-agent-status-and-restart.html).
      SendCommand naming an instance whose agent has not registered (or
      that is not running) answers HTTP 400 InvalidInstanceId "Instances
      [[i-...]] not in a valid state for account ..." (SendCommand, Errors,
      https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html).
    - Bootstrap (a script with "# glbox bootstrap:", not run in a sandbox,
      matched by no "invocations" rule): InProgress (StatusDetails
      InProgress, ResponseCode -1, no output) for download_s + install_s +
      reconfigure_s, then what it reports without the timeline (Success
      and its result line) (Run Command's statuses, "Understanding command
      statuses",
      https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html;
      the Omnibus install, https://docs.gitlab.com/install/package/). When
      the user data holds "# glbox prefetch:", the download ran from boot_s
      after the launch for download_s, and the bootstrap waits only for
      what is left of it; on an image tagged glbox:image = baked there is
      no download or install. GitLab answers gitlab_boot_s after the
      bootstrap ends (and gitlab_boot_s after a later StartInstances'
      boot). An instance with no bootstrap in this emulator's life counts
      as booted.
    - Health check (a script with "# glbox verify:", not in a sandbox):
      InProgress for check_s, then what its rule says; if it ends before
      GitLab answers, the lines after "=== liveness", "=== readiness" and
      "=== health" become 502 and an empty body.
    - ListCommandInvocations (moto 5.2.5 has none; served with or without
      the timeline): the invocations GetCommandInvocation reports, newest
      command first, honouring CommandId, InstanceId, Filters (Status,
      InvokedAfter, InvokedBefore, DocumentName), MaxResults/NextToken, and
      with Details=true one CommandPlugins entry whose Output is cut to
      2,500 characters
      (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListCommandInvocations.html,
      https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandPlugin.html).

    Without "timeline" nothing waits, as before. Install it last: it wraps
    the EC2 and SSM handlers the other extensions patched."""
    import datetime
    import time

    from moto.ec2.responses import EC2Response
    from moto.ssm.exceptions import SSMException

    original_run = InstanceBackend.run_instances
    original_start = InstanceBackend.start_instances
    original_stop = InstanceBackend.stop_instances
    original_terminate = InstanceBackend.terminate_instances

    def boot(instance, timeline, now):
        instance._state.name = "pending"
        instance._state.code = 0
        TIMELINE_BOOTING[instance.id] = (instance, now, timeline["boot_s"])

    def run_instances(self, *args, **kwargs):
        reservation = original_run(self, *args, **kwargs)
        timeline = timeline_of(behaviour(self.account_id, self.region_name))
        if timeline is not None:
            now = time.monotonic()
            with TIMELINE_LOCK:
                for instance in reservation.instances:
                    if instance._state.name == "running" and instance.id not in TIMELINE_LAUNCHED:
                        TIMELINE_LAUNCHED[instance.id] = now
                        boot(instance, timeline, now)
        return reservation

    def start_instances(self, instance_ids):
        with TIMELINE_LOCK:
            started = original_start(self, instance_ids)
            timeline = timeline_of(behaviour(self.account_id, self.region_name))
            if timeline is not None:
                now = time.monotonic()
                for instance, previous in started:
                    if previous.name == "running":
                        continue
                    boot(instance, timeline, now)
                    # GitLab starts with the box once it was installed.
                    if instance.id in TIMELINE_GITLAB_UP:
                        TIMELINE_GITLAB_UP[instance.id] = now + timeline["boot_s"] + timeline["gitlab_boot_s"]
        return started

    def ending(original):
        def call(self, instance_ids):
            # Under the lock, so that no settle turns a stopped instance
            # back to running.
            with TIMELINE_LOCK:
                answer = original(self, instance_ids)
                for instance, _ in answer:
                    TIMELINE_BOOTING.pop(instance.id, None)
            return answer

        return call

    InstanceBackend.run_instances = run_instances
    InstanceBackend.start_instances = start_instances
    InstanceBackend.stop_instances = ending(original_stop)
    InstanceBackend.terminate_instances = ending(original_terminate)

    ec2_call = EC2Response.call_action

    def ec2_call_action(self):
        timeline_settle()
        return ec2_call(self)

    EC2Response.call_action = ec2_call_action

    def registered(ec2, instance_id, timeline, now):
        """Is the instance's SSM agent registered (Online) by now?"""
        try:
            instance = ec2.get_instance(instance_id)
        except Exception:
            return True  # not EC2's: moto answers as it does
        if instance._state.name != "running":
            return False
        with TIMELINE_LOCK:
            entry = TIMELINE_BOOTING.get(instance_id)
        return entry is None or now - entry[1] >= timeline["boot_s"] + timeline["agent_s"]

    describe = SimpleSystemManagerResponse.describe_instance_information
    send = SimpleSystemManagerResponse.send_command
    get = SimpleSystemManagerResponse.get_command_invocation
    cancel = SimpleSystemManagerResponse.cancel_command

    def describe_instance_information(self):
        timeline_settle()
        timeline = timeline_of(behaviour(self.current_account, self.region))
        result = describe(self)
        if timeline is None:
            return result
        ec2 = ec2_backends[self.current_account][self.region]
        now = time.monotonic()
        answer = dict(result.result)
        answer["InstanceInformationList"] = [
            item
            for item in answer.get("InstanceInformationList", [])
            if registered(ec2, item["InstanceId"], timeline, now)
        ]
        return ActionResult(answer)

    def send_command(self):
        timeline_settle()
        wanted = behaviour(self.current_account, self.region)
        timeline = timeline_of(wanted)
        targets = list(self._get_param("InstanceIds", []) or [])
        if timeline is None:
            result = send(self)
            if not self._get_param("Targets"):
                with TIMELINE_LOCK:
                    COMMAND_INSTANCES[result.result["Command"]["CommandId"]] = targets
            return result
        ec2 = ec2_backends[self.current_account][self.region]
        now = time.monotonic()
        refused = [i for i in targets if not registered(ec2, i, timeline, now)]
        if refused:
            raise SSMException(
                "InvalidInstanceId",
                "Instances [[%s]] not in a valid state for account %s" % (", ".join(refused), self.current_account),
            )
        result = send(self)
        command_id = result.result["Command"]["CommandId"]
        if not self._get_param("Targets"):
            with TIMELINE_LOCK:
                COMMAND_INSTANCES[command_id] = targets
        if wanted.get("sandbox"):
            return result
        parameters = self._get_param("Parameters", {}) or {}
        script = decoded_script("\n".join(parameters.get("commands", []) or []))
        matched = any(rule["contains"] in script for rule in wanted.get("invocations", []))
        bootstrap = "# glbox bootstrap:" in script and not matched
        check = "# glbox verify:" in script
        if not (bootstrap or check):
            return result
        for instance_id in targets:
            if bootstrap:
                download, install = timeline["download_s"], timeline["install_s"]
                try:
                    instance = ec2.get_instance(instance_id)
                except Exception:
                    continue
                if timeline_baked(ec2, instance.image_id):
                    download = install = 0.0
                elif "# glbox prefetch:" in timeline_user_data(instance):
                    with TIMELINE_LOCK:
                        launched = TIMELINE_LAUNCHED.get(instance_id)
                    # Launched before the timeline: fetched long ago.
                    fetched = now if launched is None else launched + timeline["boot_s"] + timeline["download_s"]
                    download = max(0.0, fetched - now)
                end = now + download + install + timeline["reconfigure_s"]
                with TIMELINE_LOCK:
                    TIMELINE_COMMANDS[(command_id, instance_id)] = {"end": end, "kind": "bootstrap"}
                    TIMELINE_GITLAB_UP[instance_id] = end + timeline["gitlab_boot_s"]
            else:
                with TIMELINE_LOCK:
                    TIMELINE_COMMANDS[(command_id, instance_id)] = {"end": now + timeline["check_s"], "kind": "check"}
        return result

    def get_command_invocation(self):
        result = get(self)
        key = (self._get_param("CommandId"), self._get_param("InstanceId"))
        with TIMELINE_LOCK:
            timed = dict(TIMELINE_COMMANDS.get(key) or {})
            up = TIMELINE_GITLAB_UP.get(key[1])
        if not timed or result.result.get("Status") == "Cancelled":
            return result
        invocation = dict(result.result)
        if time.monotonic() < timed["end"]:
            invocation.update(
                {
                    "Status": "InProgress",
                    "StatusDetails": "InProgress",
                    "ResponseCode": -1,
                    "StandardOutputContent": "",
                    "StandardErrorContent": "",
                    "ExecutionEndDateTime": "",
                }
            )
            return ActionResult(invocation)
        if timed["kind"] == "check" and up is not None and timed["end"] < up:
            text = invocation.get("StandardOutputContent") or ""
            if "=== liveness" in text or "=== readiness" in text or "=== health" in text:
                invocation["StandardOutputContent"] = timeline_still_starting(text)
                return ActionResult(cut_as_ssm_does(invocation))
        return result

    def cancel_command(self):
        # A bootstrap cancelled before its end leaves no GitLab behind.
        command_id = self._get_param("CommandId")
        now = time.monotonic()
        with TIMELINE_LOCK:
            for (cid, instance_id), timed in list(TIMELINE_COMMANDS.items()):
                if cid == command_id and now < timed["end"]:
                    del TIMELINE_COMMANDS[(cid, instance_id)]
                    if timed["kind"] == "bootstrap":
                        TIMELINE_GITLAB_UP[instance_id] = float("inf")
        return cancel(self)

    def invocation_of(self, command_id, instance_id):
        """What GetCommandInvocation answers for one invocation."""
        asked = self._get_param
        mine = {"CommandId": command_id, "InstanceId": instance_id, "PluginName": None}

        def get_param(name, default=None):
            return mine[name] if name in mine else asked(name, default)

        self._get_param = get_param
        try:
            return dict(SimpleSystemManagerResponse.get_command_invocation(self).result)
        finally:
            del self._get_param

    def moment(value, key):
        try:
            when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise SSMException("InvalidFilterValue", f"{key} filter value {value!r} is not a valid date")
        if when.tzinfo is not None:
            when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return when

    def list_command_invocations(self):
        timeline_settle()
        command_id = self._get_param("CommandId")
        instance_id = self._get_param("InstanceId")
        details = bool(self._get_param("Details", False))
        filters = {}
        for item in self._get_param("Filters", []) or []:
            key = item.get("key") or item.get("Key")
            value = item.get("value") or item.get("Value")
            if key not in ("InvokedAfter", "InvokedBefore", "Status", "DocumentName", "ExecutionStage"):
                raise SSMException("InvalidFilterKey", f"{key} is not a valid filter key")
            filters[key] = value
        after = moment(filters["InvokedAfter"], "InvokedAfter") if "InvokedAfter" in filters else None
        before = moment(filters["InvokedBefore"], "InvokedBefore") if "InvokedBefore" in filters else None
        commands = self.ssm_backend.list_commands(command_id=command_id, instance_id=None)
        # Which invocations are listed is cheap to know, what each reports
        # is not: it is asked only for the page's rows, unless a filter on
        # the status needs it for all (200 seats' history at every poll).
        candidates = []
        for command in reversed(list(commands)):
            requested = command.requested_date_time
            if requested.tzinfo is not None:
                requested = requested.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            if after is not None and requested < after:
                continue
            if before is not None and requested > before:
                continue
            if "DocumentName" in filters and command.document_name != filters["DocumentName"]:
                continue
            with TIMELINE_LOCK:
                named = COMMAND_INSTANCES.get(command.command_id)
            for target in named if named is not None else sorted(command.instance_ids):
                if instance_id and target != instance_id:
                    continue
                candidates.append((command, target))

        def row_for(command, target):
            invocation = invocation_of(self, command.command_id, target)
            status = invocation.get("Status", "Success")
            if "Status" in filters and status != filters["Status"]:
                return None
            stage = "Complete" if status in FINAL_INVOCATION_STATUSES else "Executing"
            if "ExecutionStage" in filters and stage != filters["ExecutionStage"]:
                return None
            row = {
                "CommandId": command.command_id,
                "InstanceId": target,
                "Comment": command.comment or "",
                "DocumentName": command.document_name,
                "DocumentVersion": "$DEFAULT",
                "RequestedDateTime": command.requested_date_time,
                "Status": status,
                "StatusDetails": invocation.get("StatusDetails", status),
                "StandardOutputUrl": "",
                "StandardErrorUrl": "",
                "ServiceRole": command.service_role_arn or "",
            }
            if details:
                output = invocation.get("StandardOutputContent") or ""
                if invocation.get("StandardErrorContent"):
                    output += SSM_PLUGIN_ERROR_SEPARATOR + invocation["StandardErrorContent"]
                row["CommandPlugins"] = [
                    {
                        "Name": invocation.get("PluginName") or "aws:runShellScript",
                        "Status": status,
                        "StatusDetails": invocation.get("StatusDetails", status),
                        "ResponseCode": invocation.get("ResponseCode", 0),
                        "Output": output[:SSM_PLUGIN_OUTPUT_CHARACTERS],
                        "StandardOutputUrl": "",
                        "StandardErrorUrl": "",
                    }
                ]
            return row

        token = self._get_param("NextToken")
        try:
            start = int(token or 0)
        except ValueError:
            raise SSMException("InvalidNextToken", "The specified token is not valid.")
        size = int(self._get_param("MaxResults") or SSM_LIST_INVOCATIONS_PAGE)
        size = max(1, min(size, SSM_LIST_INVOCATIONS_PAGE))
        if "Status" in filters or "ExecutionStage" in filters:
            rows = [row for row in (row_for(*c) for c in candidates) if row is not None]
            total, listed = len(rows), rows[start : start + size]
        else:
            total = len(candidates)
            listed = [row_for(*c) for c in candidates[start : start + size]]
        page = {"CommandInvocations": listed}
        if start + size < total:
            page["NextToken"] = str(start + size)
        return ActionResult(page)

    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information
    SimpleSystemManagerResponse.send_command = send_command
    SimpleSystemManagerResponse.get_command_invocation = get_command_invocation
    SimpleSystemManagerResponse.cancel_command = cancel_command
    SimpleSystemManagerResponse.list_command_invocations = list_command_invocations


def main():
    # One access-log line per request would drown the test output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    add_ubuntu_parameters()
    add_instance_information()
    add_invocation_outcomes()
    add_bootstrap_result_line()
    add_sandbox_execution()
    add_console_output()
    add_console_once_per_instance()
    add_ses_dkim_state()
    add_ses_pending_verification()
    add_ses_dkim_records_check()
    add_user_delete_conflict()
    add_user_permissions_boundary()
    add_route53_zone_ids()
    add_route53_change_status()
    add_robust_model_data()
    add_serial_recording()
    # Before the client tokens, which wrap whatever run_instances is then.
    add_instance_counts()
    # Around the instance counts: the quota judges the MaxCount asked for.
    add_quotas()
    add_client_tokens()
    add_doctor_answers()
    add_eventual_consistency()
    add_profile_propagation()
    add_volume_modification_rate()
    add_sandbox_snapshot_data()
    add_default_vpc_internet()
    add_launch_network_interfaces()
    add_dlm()
    add_s3_versioning_root()
    add_s3_secure_transport()
    # Last: it wraps the EC2 and SSM handlers the extensions above patched.
    add_timeline()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    sys.stdin.read()
    server.stop()
    os.unlink(RECORDING.name)


if __name__ == "__main__":
    main()
