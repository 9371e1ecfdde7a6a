"""Driver for scripts/bench: runs `glbox up` (SSM bootstrap, which the
emulator accepts without running) against a private emulator and
reports the AWS requests it made (from the emulator's recorder) and the
wall time of each run."""

import argparse
import base64
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAUNCHER = os.path.join(os.path.dirname(__file__), "..", "tests", "emulator", "moto_launcher.py")
HEALTHY_OUTPUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "verify-healthy.txt")


def control(port, method, path):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request) as response:
        return response.read().decode()


def action_of(record):
    target = record["headers"].get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    body = record.get("body") or ""
    if record.get("body_encoded"):
        body = base64.b64decode(body).decode()
    for pair in body.split("&"):
        if pair.startswith("Action="):
            return pair[len("Action="):]
    return "?"


def is_mutating(action):
    return not action.startswith(("Describe", "Get", "List"))


class SignInPage(BaseHTTPRequestHandler):
    """Stands in for GitLab's sign-in page for the outside check (the
    addresses the emulator hands out exist nowhere)."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def sign_in_server():
    # A class checks its sign-in pages at once: a listen queue of 5 (the
    # default) would turn them away.
    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", 0), SignInPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def healthy_box(port):
    """The emulator runs nothing: have it report a healthy box to the checks
    that end `up` (see tests/emulator/moto_launcher.py)."""
    import boto3

    ssm = boto3.client("ssm", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    with open(HEALTHY_OUTPUT) as sample:
        rule = {"contains": "# glbox verify:", "status": "Success", "stdout": sample.read()}
    ssm.put_parameter(Name="/glbox-test/behaviour", Type="String", Overwrite=True,
                      Value=json.dumps({"invocations": [rule]}))


def timed_run(port, glbox, workdir):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": workdir,
        "XDG_STATE_HOME": os.path.join(workdir, "state"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    control(port, "POST", "/moto-api/recorder/reset-recording")
    control(port, "POST", "/moto-api/recorder/start-recording")
    started = time.perf_counter()
    subprocess.run([glbox, "-q", "up", "--yes"], cwd=workdir, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    control(port, "POST", "/moto-api/recorder/stop-recording")
    log = control(port, "GET", "/moto-api/recorder/download-recording")
    actions = [action_of(json.loads(line)) for line in log.splitlines() if line.strip()]
    return elapsed, collections.Counter(actions)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--glbox", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()

    # An account with room for a c5.2xlarge (see moto_launcher.py QUOTAS).
    quotas = {**os.environ, "GLBOX_EMULATOR_QUOTAS": json.dumps({"vcpu_quota": 1024})}
    launcher = subprocess.Popen([sys.executable, LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env=quotas)
    try:
        port = int(launcher.stdout.readline())
        sign_in_port = sign_in_server()
        results = {"from_empty": [], "no_op": []}
        counts = {}
        for run in range(args.runs):
            control(port, "POST", "/moto-api/reset")
            healthy_box(port)
            with tempfile.TemporaryDirectory() as workdir:
                with open(os.path.join(workdir, "glbox.toml"), "w") as config:
                    config.write(f'name = "bench{run}"\n[verify]\nurl = "http://127.0.0.1:{sign_in_port}"\n')
                # The emulator loads each service lazily: warm it with one
                # untimed deployment first.
                if run == 0:
                    timed_run(port, args.glbox, workdir)
                    control(port, "POST", "/moto-api/reset")
                    healthy_box(port)
                for phase in ("from_empty", "no_op"):
                    elapsed, actions = timed_run(port, args.glbox, workdir)
                    results[phase].append(elapsed)
                    counts[phase] = actions
        report = {}
        for phase in ("from_empty", "no_op"):
            actions = counts[phase]
            report[phase] = {
                "runs": args.runs,
                "wall_seconds_median": round(statistics.median(results[phase]), 3),
                "wall_seconds_max": round(max(results[phase]), 3),
                "calls_total": sum(actions.values()),
                "calls_mutating": sum(n for a, n in actions.items() if is_mutating(a)),
                "calls_by_action": dict(sorted(actions.items())),
            }
            print(f"== up {phase.replace('_', '-')}: {args.runs} runs, median {report[phase]['wall_seconds_median']}s, "
                  f"{report[phase]['calls_total']} AWS calls ({report[phase]['calls_mutating']} mutating)")
            for action, n in sorted(actions.items()):
                print(f"   {n:3d}  {action}{'  *' if is_mutating(action) else ''}")
        print("(* mutating; wall time of a debug build against the local emulator, no injected latency)")
        if args.json:
            with open(args.json, "w") as out:
                json.dump(report, out, indent=2)
    finally:
        launcher.stdin.close()
        launcher.wait(timeout=10)


if __name__ == "__main__":
    main()
