"""Driver for scripts/bench-lab: `glbox lab up` for classes of several sizes
against a private emulator behind the fault proxy, which adds a fixed
latency to every AWS call (as a real region's round trip would). Reports
wall time, AWS calls by action (the emulator's recorder), calls per seat,
and glbox's peak memory (its own VmHWM), for the first `lab up`, the
no-op re-run and `lab down`. Everything stays on 127.0.0.1."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_up import action_of, control, healthy_box, is_mutating, sign_in_server  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
LAUNCHER = os.path.join(ROOT, "tests", "emulator", "moto_launcher.py")
PROXY = os.path.join(ROOT, "tests", "emulator", "fault_proxy.py")


def start(command):
    """A harness helper: prints its port first, serves until stdin closes."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return process, int(process.stdout.readline())


def high_water_kib(pid):
    """The process's peak resident set size so far, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measured(glbox, args, workdir, endpoint, emulator_port, extra_env=None):
    """Runs glbox once; returns wall seconds, peak RSS (MiB) and actions."""
    env = {
        **(extra_env or {}),
        "PATH": os.environ.get("PATH", ""),
        "HOME": workdir,
        "XDG_STATE_HOME": os.path.join(workdir, "state"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
    }
    control(emulator_port, "POST", "/moto-api/recorder/reset-recording")
    control(emulator_port, "POST", "/moto-api/recorder/start-recording")
    started = time.perf_counter()
    child = subprocess.Popen([glbox, "-q", *args, "--yes"], cwd=workdir, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    # VmHWM is glbox's own high-water mark (the rusage of a forked child
    # would also count the Python process it was forked from).
    while child.poll() is None:
        peak_kib = max(peak_kib, high_water_kib(child.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    stderr = child.stderr.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"glbox {' '.join(args)} failed:\n{stderr}")
    control(emulator_port, "POST", "/moto-api/recorder/stop-recording")
    log = control(emulator_port, "GET", "/moto-api/recorder/download-recording")
    actions = {}
    for line in log.splitlines():
        if line.strip():
            action = action_of(json.loads(line))
            actions[action] = actions.get(action, 0) + 1
    return elapsed, peak_kib / 1024, dict(sorted(actions.items()))


def summary(seats, elapsed, peak, actions):
    total = sum(actions.values())
    mutating = sum(n for a, n in actions.items() if is_mutating(a))
    return {
        "seats": seats,
        "wall_seconds": round(elapsed, 2),
        "peak_rss_mib": round(peak, 1),
        "calls_total": total,
        "calls_mutating": mutating,
        "calls_per_seat": round(total / seats, 2),
        "mutating_per_seat": round(mutating / seats, 2),
        "describe_instances": actions.get("DescribeInstances", 0),
        "calls_by_action": actions,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--glbox", required=True)
    parser.add_argument("--seats", default="1,10,50,100")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--json")
    args = parser.parse_args()
    # The account a lab of 100 c5.2xlarge seats needs (see moto_launcher.py QUOTAS).
    os.environ["GLBOX_EMULATOR_QUOTAS"] = json.dumps({"vcpu_quota": 1024, "spot_vcpu_quota": 1024})
    emulator, port = start([sys.executable, LAUNCHER])
    rules = {"rules": [{"fault": "latency", "latency_ms": args.latency_ms, "actions": ["*"]}]}
    proxy, proxy_port = start([sys.executable, PROXY, "--upstream", str(port),
                               "--config-json", json.dumps(rules)])
    endpoint = f"http://127.0.0.1:{proxy_port}"
    report = []
    try:
        sign_in_port = sign_in_server()
        # The emulator loads each service lazily: one untimed lab first.
        for warm_up, seats in [(True, 1)] + [(False, int(n)) for n in args.seats.split(",")]:
            control(port, "POST", "/moto-api/reset")
            healthy_box(port)
            with tempfile.TemporaryDirectory() as workdir:
                with open(os.path.join(workdir, "glbox.toml"), "w") as config:
                    config.write(f'[lab]\nname = "bench"\nseats = {seats}\nexpires_in = "2h"\n'
                                 f'[verify]\nurl = "http://127.0.0.1:{sign_in_port}"\n')
                runs = {}
                for phase, command in (("up", ["lab", "up"]), ("no_op", ["lab", "up"]),
                                       ("down", ["lab", "down"])):
                    runs[phase] = summary(seats, *measured(args.glbox, command, workdir, endpoint, port))
                if warm_up:
                    continue
                report.append(runs)
                for phase, result in runs.items():
                    print(f"== {seats:3d} seats, lab {phase.replace('_', '-'):6s}: {result['wall_seconds']:7.2f}s, "
                          f"{result['calls_total']:5d} calls ({result['calls_per_seat']:.2f}/seat, "
                          f"{result['calls_mutating']} mutating), {result['describe_instances']} DescribeInstances, "
                          f"peak {result['peak_rss_mib']} MiB", flush=True)
        print(f"(debug build, local emulator behind a proxy adding {args.latency_ms} ms to every AWS call; "
              "SSM bootstrap and checks answered by the emulator, so GitLab's own install time is not included)")
        if args.json:
            with open(args.json, "w") as out:
                json.dump({"latency_ms": args.latency_ms, "labs": report}, out, indent=2)
    finally:
        for process in (proxy, emulator):
            process.stdin.close()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
