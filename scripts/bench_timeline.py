"""Driver for scripts/bench-timeline: the time a user waits for a healthy
GitLab, in simulated minutes. The emulator's timeline
(tests/emulator/moto_launcher.py add_timeline) makes instances boot, SSM
agents come Online, the bootstrap's phases and GitLab's start take the
times of a real box, on a clock that runs `--scale` times faster than real
time; glbox (a `simclock` build, GLBOX_CLOCK_SCALE) runs its own waits on
the same fast clock. A run's simulated time is its wall time times the
scale. Reports the single box's time, each lab's time until every seat is
healthy, AWS calls per seat and glbox's peak memory. Everything stays on
127.0.0.1."""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_lab import LAUNCHER, measured, start  # noqa: E402
from bench_up import HEALTHY_OUTPUT, control, sign_in_server  # noqa: E402


def set_behaviour(port, scale):
    """The timeline, and a healthy answer to the health checks once GitLab
    would have booted (the timeline answers "still starting" before)."""
    import boto3

    ssm = boto3.client("ssm", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    with open(HEALTHY_OUTPUT) as sample:
        rule = {"contains": "# glbox verify:", "status": "Success", "stdout": sample.read()}
    value = {"timeline": {"scale": scale}, "invocations": [rule]}
    ssm.put_parameter(Name="/glbox-test/behaviour", Type="String", Overwrite=True, Value=json.dumps(value))


def run(glbox, port, scale, sign_in_port, config, command):
    """One `up` from an empty account: simulated minutes, calls, peak MiB."""
    control(port, "POST", "/moto-api/reset")
    set_behaviour(port, scale)
    with tempfile.TemporaryDirectory() as workdir:
        with open(os.path.join(workdir, "glbox.toml"), "w") as out:
            out.write(config + f'[verify]\nurl = "http://127.0.0.1:{sign_in_port}"\n')
        elapsed, peak, actions = measured(glbox, command, workdir, f"http://127.0.0.1:{port}", port,
                                          {"GLBOX_CLOCK_SCALE": str(scale)})
    return elapsed * scale / 60, sum(actions.values()), peak, actions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--glbox", required=True)
    parser.add_argument("--seats", default="1,25,100,200")
    # 30: a simulated hour takes two minutes. An emulator call (about 10 ms
    # here) then weighs 0.3 simulated seconds, about three times a region's
    # round trip, so designs that make many calls look slower here than on
    # AWS, never faster. At 60 that would be six times.
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    # The account a lab of 200 c5.2xlarge seats needs (see moto_launcher.py QUOTAS).
    os.environ["GLBOX_EMULATOR_QUOTAS"] = json.dumps({"vcpu_quota": 2048, "spot_vcpu_quota": 2048})
    emulator, port = start([sys.executable, LAUNCHER])
    try:
        sign_in_port = sign_in_server()
        # The emulator loads each service lazily: one untimed box first.
        run(args.glbox, port, args.scale, sign_in_port, 'name = "warm"\n', ["up"])
        box_minutes, calls, peak, _ = run(args.glbox, port, args.scale, sign_in_port, 'name = "bench"\n', ["up"])
        print(f"== one box: healthy after {box_minutes:.1f} simulated min, {calls} AWS calls, peak {peak:.1f} MiB",
              flush=True)
        labs = []
        for seats in (int(n) for n in args.seats.split(",")):
            config = f'[lab]\nname = "bench"\nseats = {seats}\nexpires_in = "2h"\n'
            minutes, calls, peak, actions = run(args.glbox, port, args.scale, sign_in_port, config, ["lab", "up"])
            labs.append({"seats": seats, "minutes": round(minutes, 1), "calls_per_seat": round(calls / seats, 2),
                         "peak_mib": round(peak, 1), "calls_by_action": actions})
            print(f"== {seats:3d} seats: every seat healthy after {minutes:.1f} simulated min "
                  f"({minutes / box_minutes:.2f}x one box), {calls / seats:.2f} AWS calls per seat, "
                  f"peak {peak:.1f} MiB", flush=True)
        print(f"(debug build against the local emulator, clock {args.scale:g}x; an emulator call's real time "
              "counts at that scale too, so AWS calls weigh more here than on AWS)")
        if args.json:
            with open(args.json, "w") as out:
                json.dump({"box_minutes": round(box_minutes, 1), "scale": args.scale, "labs": labs}, out, indent=2)
    finally:
        emulator.stdin.close()
        emulator.wait(timeout=30)


if __name__ == "__main__":
    main()
