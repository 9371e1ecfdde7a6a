"""A fault-injecting HTTP proxy between glbox and the moto emulator, for
glbox's reliability tests.

Usage: fault_proxy.py --upstream PORT [--config FILE | --config-json TEXT]

Like moto_launcher.py, it listens on a free port of 127.0.0.1, prints that
port as the first line of stdout, and serves until its standard input closes
(so it dies with the test process that started it). Python 3 standard
library only.

Every AWS request is forwarded to the emulator at 127.0.0.1:PORT unless a
fault rule decides otherwise. The request's action is
  - the `Action` form field for query protocols (EC2, IAM, SES, STS, ...),
  - the operation of `X-Amz-Target` for JSON protocols (`AmazonSSM.GetParameter`
    -> `GetParameter`),
  - for Route 53 (REST XML) the operation named from method and path
    (`ChangeResourceRecordSets`, `ListHostedZones`, ...),
  - for Data Lifecycle Manager (REST JSON) likewise (`GetLifecyclePolicies`),
  - for S3 (REST XML, path style) the method, bucket or object, and
    subresource (`GET bucket?versioning`, `PUT object`).
The service is the signing name in the SigV4 credential scope (`ec2`, `iam`,
`ssm`, `ses`, `route53`, ...).

Configuration (JSON; the whole object, at start or through the control API):

  {"seed": 7,                      # optional: a reproducible random sequence
   "rules": [
     {"fault": "throttle",         # see FAULTS below
      "rate": 0.2,                 # probability per matching request (default 1)
      "actions": ["*"],            # action names, or "*" (default: all)
      "services": ["ec2"],         # optional: signing names
      "max": 10,                   # optional: at most this many injections
      "max_per_action": 1,         # optional: at most this many per action
      "per_second": 10,            # optional: only requests above this rate
                                   # (over the last second, among the rule's
                                   # matches) are candidates: AWS's own
                                   # request-rate throttling
      "latency_ms": 50}            # for "latency" only
   ]}

FAULTS
  throttle      the protocol's throttling error, in its wire format: EC2
                HTTP 503 <Response><Errors><Error><Code>RequestLimitExceeded;
                other query services (IAM, SES, ...) and Route 53 HTTP 400
                <ErrorResponse><Error><Type>Sender</Type><Code>Throttling;
                JSON services (SSM) HTTP 400 {"__type": "ThrottlingException"}
  http500       HTTP 500 (InternalError / ServiceFailure / InternalServerError)
  http503       HTTP 503 (Unavailable / ServiceUnavailable)
  reset_before  the connection is reset (TCP RST) after the request was read
                and before it reaches the emulator: nothing happened
  reset_after   the request is forwarded, the emulator does the work, then the
                connection is reset: the answer is lost
  latency       the request is delayed by latency_ms, then handled as usual
  not_found_fresh
                EC2's eventual consistency: an id that RunInstances,
                CreateSecurityGroup, AllocateAddress or CreateVolume has just
                returned is unknown to the first "calls" (default 1) EC2
                requests naming it (in any parameter but filters) within
                "window_ms" (default 10000) of its creation; they answer the
                id's NotFound code (InvalidInstanceID.NotFound, ...). Source:
                "Eventual consistency in the Amazon EC2 API",
                https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
                (rate, actions, services and the caps do not apply)

Latency rules all apply (their delays add up); of the other rules, the first
that matches and whose draw hits decides the request's fate.

Control API (never forwarded, never faulted):
  GET  /fault-proxy/stats          counts (see Faults.snapshot): {"requests",
                                   "forwarded", "injected": {fault: n},
                                   "failures", "by_action": {action:
                                   {"requests", "forwarded", fault: n}},
                                   "upstream_errors"}
  POST /fault-proxy/stats/reset    zero the counts
  GET  /fault-proxy/config         the configuration in force
  POST /fault-proxy/config         replace it (JSON body as above); the
                                   injection caps (max, max_per_action) start
                                   again from zero
Requests to /moto-api/ (the emulator's own control API) are forwarded
without faults.
"""

import argparse
import collections
import http.client
import io
import json
import random
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("throttle", "http500", "http503", "reset_before", "reset_after", "latency", "not_found_fresh")
CONTROL_PREFIX = "/fault-proxy/"
# Not passed on between the two connections (RFC 9110 7.6.1), or recomputed.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class ConfigError(ValueError):
    pass


def validate(config):
    """Checks a configuration object; returns it normalised."""
    if not isinstance(config, dict):
        raise ConfigError("the configuration must be a JSON object")
    rules = config.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError("rules must be a list")
    normalised = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, dict):
            raise ConfigError(f"rule {index} must be an object")
        fault = rule.get("fault")
        if fault not in FAULTS:
            raise ConfigError(f"rule {index}: fault must be one of {', '.join(FAULTS)}, not {fault!r}")
        rate = rule.get("rate", 1.0)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ConfigError(f"rule {index}: rate must be a number from 0 to 1")
        actions = rule.get("actions", ["*"])
        services = rule.get("services")
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise ConfigError(f"rule {index}: actions must be a list of names")
        if services is not None and (
            not isinstance(services, list) or not all(isinstance(s, str) for s in services)
        ):
            raise ConfigError(f"rule {index}: services must be a list of names")
        for key in ("max", "max_per_action", "latency_ms", "per_second", "calls", "window_ms"):
            value = rule.get(key)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ConfigError(f"rule {index}: {key} must be a number >= 0")
        if fault == "latency" and rule.get("latency_ms") is None:
            raise ConfigError(f"rule {index}: a latency rule needs latency_ms")
        normalised.append(dict(rule, rate=float(rate), actions=actions))
    seed = config.get("seed")
    return {"seed": seed, "rules": normalised}


# EC2 create calls whose answer carries a new id, and the element holding it
# (the EC2 API reference's response elements of each action).
FRESH_ID_SOURCES = {
    "RunInstances": "instanceId",
    "CreateSecurityGroup": "groupId",
    "AllocateAddress": "allocationId",
    "CreateVolume": "volumeId",
}
# What EC2 answers for an id it does not know (EC2 API reference, "Error
# codes for the Amazon EC2 API").
NOT_FOUND = {
    "i-": ("InvalidInstanceID.NotFound", "The instance ID '{}' does not exist"),
    "sg-": ("InvalidGroup.NotFound", "The security group '{}' does not exist"),
    "eipalloc-": ("InvalidAllocationID.NotFound", "The allocation ID '{}' does not exist"),
    "vol-": ("InvalidVolume.NotFound", "The volume '{}' does not exist."),
}


class FreshIds:
    """EC2's eventual consistency ("Eventual consistency in the Amazon EC2
    API", https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
    right after a create call returns an id, the next calls naming it may
    answer NotFound. Here: the first `calls` requests naming a fresh id
    within `window_s` of its creation do. Filters are not counted: EC2
    answers those with an empty list, not an error. Used by this proxy (the
    not_found_fresh fault) and by moto_launcher.py (its default)."""

    def __init__(self, calls, window_s):
        self.calls = calls
        self.window_s = window_s
        self.lock = threading.Lock()
        # id -> [refusals left, monotonic deadline]
        self.fresh = {}

    def learn(self, action, answer):
        """Notes the id a successful create call's answer carries."""
        element = FRESH_ID_SOURCES.get(action)
        if element is None or self.calls <= 0:
            return
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
        found = re.findall(f"<{element}>([^<]+)</{element}>", text)
        if action == "RunInstances":
            ids = [i for i in found if i.startswith("i-")]
        else:
            ids = found[:1]
        deadline = time.monotonic() + self.window_s
        with self.lock:
            for new_id in ids:
                self.fresh.setdefault(new_id, [self.calls, deadline])

    def refusal(self, fields):
        """(code, message) when this request names a fresh id EC2 does not
        know yet (counted), else None. `fields`: name -> list of values."""
        now = time.monotonic()
        with self.lock:
            for key, values in fields.items():
                if key.startswith("Filter"):
                    continue
                for value in values if isinstance(values, list) else [values]:
                    entry = self.fresh.get(value)
                    if entry is None or entry[0] <= 0 or now > entry[1]:
                        continue
                    entry[0] -= 1
                    for prefix, (code, message) in NOT_FOUND.items():
                        if value.startswith(prefix):
                            return code, message.format(value)
        return None


def ec2_error(status, code, message):
    """(status, headers, body) of an EC2 error in its wire format."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
        f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>"
    ).encode()
    return status, {"Content-Type": "text/xml;charset=UTF-8"}, body


class Faults:
    """The configuration in force, the random draws and the counts."""

    def __init__(self, config):
        self.lock = threading.Lock()
        self.reset_stats()
        self.configure(config)

    def configure(self, config):
        config = validate(config)
        with self.lock:
            self.config = config
            self.random = random.Random(config["seed"])
            # Per rule: injections so far, and per action.
            self.used = [0] * len(config["rules"])
            # Per rule: when its recent matching requests arrived.
            self.recent = [collections.deque() for _ in config["rules"]]
            self.used_by_action = [{} for _ in config["rules"]]
            fresh = [r for r in config["rules"] if r["fault"] == "not_found_fresh"]
            self.fresh = (
                FreshIds(int(fresh[0].get("calls", 1)), float(fresh[0].get("window_ms", 10000)) / 1000.0)
                if fresh
                else None
            )

    def fresh_refusal(self, action, fields):
        """The not_found_fresh fault for an EC2 request, counted."""
        fresh = self.fresh
        refusal = fresh.refusal(fields) if fresh is not None else None
        if refusal is not None:
            with self.lock:
                self.injected["not_found_fresh"] += 1
                entry = self.by_action[action]
                entry["not_found_fresh"] = entry.get("not_found_fresh", 0) + 1
        return refusal

    def learn(self, action, answer):
        fresh = self.fresh
        if fresh is not None:
            fresh.learn(action, answer)

    def reset_stats(self):
        with self.lock:
            self.requests = 0
            self.forwarded = 0
            self.injected = {fault: 0 for fault in FAULTS}
            self.by_action = {}
            self.upstream_errors = 0

    def decide(self, service, action):
        """The faults for one request: (total latency in ms, fault or None),
        counted as injected."""
        with self.lock:
            self.requests += 1
            entry = self.by_action.setdefault(action, {"requests": 0, "forwarded": 0})
            entry["requests"] += 1
            latency = 0.0
            chosen = None
            for index, rule in enumerate(self.config["rules"]):
                if rule["fault"] == "not_found_fresh":
                    continue
                if rule["fault"] != "latency" and chosen is not None:
                    continue
                if not self._matches(rule, service, action):
                    continue
                if rule.get("per_second") is not None and not self._over_rate(index, rule):
                    continue
                if rule.get("max") is not None and self.used[index] >= rule["max"]:
                    continue
                per_action = self.used_by_action[index]
                cap = rule.get("max_per_action")
                if cap is not None and per_action.get(action, 0) >= cap:
                    continue
                if self.random.random() >= rule["rate"]:
                    continue
                self.used[index] += 1
                per_action[action] = per_action.get(action, 0) + 1
                self.injected[rule["fault"]] += 1
                entry[rule["fault"]] = entry.get(rule["fault"], 0) + 1
                if rule["fault"] == "latency":
                    latency += float(rule["latency_ms"])
                else:
                    chosen = rule["fault"]
            return latency, chosen

    def _over_rate(self, index, rule):
        """Counts this request against the rule's one-second window; true
        when the window already held `per_second` requests."""
        now = time.monotonic()
        window = self.recent[index]
        while window and now - window[0] >= 1.0:
            window.popleft()
        over = len(window) >= rule["per_second"]
        window.append(now)
        return over

    @staticmethod
    def _matches(rule, service, action):
        actions = rule["actions"]
        if "*" not in actions and action not in actions:
            return False
        services = rule.get("services")
        return services is None or service in services

    def count_forwarded(self, action):
        with self.lock:
            self.forwarded += 1
            self.by_action[action]["forwarded"] += 1

    def count_upstream_error(self):
        with self.lock:
            self.upstream_errors += 1

    def snapshot(self):
        with self.lock:
            return {
                # AWS requests received (control requests excluded).
                "requests": self.requests,
                # Of those, how many reached the emulator (reset_after ones
                # included: the emulator did the work).
                "forwarded": self.forwarded,
                # Injections by fault.
                "injected": dict(self.injected),
                # Every injection but latency: the requests that failed.
                "failures": sum(n for f, n in self.injected.items() if f != "latency"),
                # Per action: requests, forwarded, and injections by fault.
                "by_action": json.loads(json.dumps(self.by_action)),
                # The emulator could not be reached (answered 502).
                "upstream_errors": self.upstream_errors,
            }


def route53_operation(method, path):
    """Route 53 (REST XML) names its operation by method and path."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if not parts or parts[0] != "2013-04-01":
        return None
    parts = parts[1:]
    shape = [p if p in ("hostedzone", "rrset", "change", "tags", "healthcheck") else "_" for p in parts]
    table = {
        ("GET", ("hostedzone",)): "ListHostedZones",
        ("POST", ("hostedzone",)): "CreateHostedZone",
        ("GET", ("hostedzone", "_")): "GetHostedZone",
        ("DELETE", ("hostedzone", "_")): "DeleteHostedZone",
        ("GET", ("hostedzone", "_", "rrset")): "ListResourceRecordSets",
        ("POST", ("hostedzone", "_", "rrset")): "ChangeResourceRecordSets",
        ("GET", ("change", "_")): "GetChange",
    }
    return table.get((method, tuple(shape)), f"{method} /{'/'.join(parts)}")


def dlm_operation(method, path):
    """Data Lifecycle Manager (REST JSON) names its operation by method and
    path (https://docs.aws.amazon.com/dlm/latest/APIReference/API_Operations.html)."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    table = {
        ("GET", 1): "GetLifecyclePolicies",
        ("POST", 1): "CreateLifecyclePolicy",
        ("GET", 2): "GetLifecyclePolicy",
        ("PATCH", 2): "UpdateLifecyclePolicy",
        ("DELETE", 2): "DeleteLifecyclePolicy",
    }
    if parts and parts[0] == "policies":
        return table.get((method, len(parts)), f"{method} {path}")
    return f"{method} /{'/'.join(parts[:1])}"


def s3_operation(method, path):
    """S3 (REST XML, path style here) by method, object or bucket, and
    subresource: "GET bucket?versioning", "PUT object"."""
    bare, _, query = path.partition("?")
    parts = [p for p in bare.split("/") if p]
    subresource = query.split("&")[0].split("=")[0] if query else ""
    target = "object" if len(parts) > 1 else "bucket"
    return f"{method} {target}" + (f"?{subresource}" if subresource else "")


def form_fields(path, headers, body):
    """The parameters of a query-protocol request (form body and URL)."""
    fields = {}
    if body and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return {**query, **fields}


def identify(method, path, headers, body):
    """(service, action, protocol) of an AWS request. protocol is one of
    "ec2", "query", "json", "rest-xml", "rest-json" (DLM), "rest-s3"."""
    match = CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    service = match.group(1) if match else "?"
    target = headers.get("X-Amz-Target")
    if target:
        return service, target.rsplit(".", 1)[-1], "json"
    if service == "dlm":
        return service, dlm_operation(method, path), "rest-json"
    if service == "s3":
        return service, s3_operation(method, path), "rest-s3"
    operation = route53_operation(method, path)
    if operation is not None:
        return (service if match else "route53"), operation, "rest-xml"
    action = (form_fields(path, headers, body).get("Action") or ["?"])[0]
    return service, action, "ec2" if service == "ec2" else "query"


# (code, HTTP status) of each error fault, per protocol.
ERRORS = {
    "throttle": {
        "ec2": ("RequestLimitExceeded", 503, "Request limit exceeded."),
        "query": ("Throttling", 400, "Rate exceeded"),
        "rest-xml": ("Throttling", 400, "Rate exceeded"),
        "json": ("ThrottlingException", 400, "Rate exceeded"),
        "rest-json": ("ThrottlingException", 400, "Rate exceeded"),
        # S3's own throttling answer (S3 API reference, Error responses).
        "rest-s3": ("SlowDown", 503, "Please reduce your request rate."),
    },
    "http500": {
        "ec2": ("InternalError", 500, "An internal error has occurred (injected)."),
        "query": ("ServiceFailure", 500, "An internal error has occurred (injected)."),
        "rest-xml": ("InternalError", 500, "An internal error has occurred (injected)."),
        "json": ("InternalServerError", 500, "An internal error has occurred (injected)."),
        "rest-json": ("InternalServerException", 500, "An internal error has occurred (injected)."),
        "rest-s3": ("InternalError", 500, "We encountered an internal error (injected)."),
    },
    "http503": {
        "ec2": ("Unavailable", 503, "The server is overloaded (injected)."),
        "query": ("ServiceUnavailable", 503, "Service unavailable (injected)."),
        "rest-xml": ("ServiceUnavailable", 503, "Service unavailable (injected)."),
        "json": ("ServiceUnavailable", 503, "Service unavailable (injected)."),
        "rest-json": ("ServiceUnavailable", 503, "Service unavailable (injected)."),
        "rest-s3": ("ServiceUnavailable", 503, "Service unavailable (injected)."),
    },
}


def error_response(fault, protocol):
    """(status, headers, body) of an injected AWS error, in the protocol's
    wire format, so that the SDK parses its code as AWS would send it."""
    code, status, message = ERRORS[fault][protocol]
    request_id = str(uuid.uuid4())
    if protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": code,
        }
    elif protocol == "rest-s3":
        body = (
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers = {"Content-Type": "application/xml", "x-amz-request-id": request_id}
    elif protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "x-amzn-RequestId": request_id,
            "x-amzn-ErrorType": code,
        }
    elif protocol == "ec2":
        return ec2_error(status, code, message)
    else:
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            "<ErrorResponse><Error>"
            f"<Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    return status, headers, body


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the SDK expects; every answer carries Content-Length.
    protocol_version = "HTTP/1.1"
    server_version = "glbox-fault-proxy"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers, up to the empty line.
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith(CONTROL_PREFIX):
            return self.control(body)
        if self.path.startswith("/moto-api/"):
            return self.forward(body, None)
        service, action, protocol = identify(self.command, self.path, self.headers, body)
        faults = self.server.faults
        latency, fault = faults.decide(service, action)
        if latency:
            time.sleep(latency / 1000.0)
        if fault == "reset_before":
            return self.reset()
        if fault in ERRORS:
            return self.answer(*error_response(fault, protocol))
        if protocol == "ec2" and fault is None:
            refusal = faults.fresh_refusal(action, form_fields(self.path, self.headers, body))
            if refusal is not None:
                # EC2 answers client errors with HTTP 400.
                return self.answer(*ec2_error(400, *refusal))
        answered = self.forward(body, action, deliver=fault != "reset_after")
        if fault == "reset_after" and answered is not None:
            self.reset()
        if answered is not None and protocol == "ec2":
            faults.learn(action, answered)

    def forward(self, body, action, deliver=True):
        """Passes the request to the emulator; sends its answer back unless
        `deliver` is false. Returns the emulator's answer (None when it did
        not answer; only successful answers count)."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            status, reason = response.status, response.reason
            answer_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        except (OSError, http.client.HTTPException) as err:
            self.server.faults.count_upstream_error()
            self.answer(502, {"Content-Type": "text/plain"}, f"fault proxy: upstream failed: {err}\n".encode())
            return None
        finally:
            upstream.close()
        if action is not None:
            self.server.faults.count_forwarded(action)
        if deliver:
            self.send_response(status, reason)
            for key, value in answer_headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        return payload if status == 200 else b""

    def answer(self, status, headers, body):
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset(self):
        """Aborts the connection: SO_LINGER 0 makes close() send a TCP RST
        instead of a FIN, as a dropped connection or a crashed peer does."""
        connection = self.connection
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        # The socket is only closed once its file objects are.
        for stream in (self.rfile, self.wfile):
            try:
                stream.close()
            except OSError:
                pass
        connection.close()
        # What the base classes still do with them (flush, close) is moot.
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()

    def control(self, body):
        path = self.path.split("?", 1)[0]
        faults = self.server.faults
        if self.command == "GET" and path == "/fault-proxy/stats":
            return self.json(200, faults.snapshot())
        if self.command == "POST" and path == "/fault-proxy/stats/reset":
            faults.reset_stats()
            return self.json(200, faults.snapshot())
        if self.command == "GET" and path == "/fault-proxy/config":
            with faults.lock:
                return self.json(200, faults.config)
        if self.command == "POST" and path == "/fault-proxy/config":
            try:
                faults.configure(json.loads(body or b"{}"))
            except (ValueError, ConfigError) as err:
                return self.json(400, {"error": str(err)})
            with faults.lock:
                return self.json(200, faults.config)
        return self.json(404, {"error": f"no control endpoint {self.command} {path}"})

    def json(self, status, value):
        self.answer(status, {"Content-Type": "application/json"}, json.dumps(value).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, upstream, faults):
        super().__init__(("127.0.0.1", 0), Handler)
        self.upstream = upstream
        self.faults = faults

    def handle_error(self, request, client_address):
        # A client that went away (or a connection the proxy reset itself)
        # is not worth a traceback.
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--upstream", type=int, required=True, help="the emulator's port on 127.0.0.1")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--config", help="a JSON configuration file")
    group.add_argument("--config-json", help="the JSON configuration itself")
    args = parser.parse_args()
    config = {"rules": []}
    if args.config:
        with open(args.config, encoding="utf-8") as file:
            config = json.load(file)
    elif args.config_json:
        config = json.loads(args.config_json)
    try:
        faults = Faults(config)
    except ConfigError as err:
        parser.error(str(err))
    server = Server(args.upstream, faults)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()
    server.server_close()


if __name__ == "__main__":
    main()
