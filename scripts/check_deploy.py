"""Checks deploy/ against the binary it deploys.

- The ConfigMap's config.toml passes `example-app --check` (with the
  Secret's keys set as the Deployment sets them).
- terminationGracePeriodSeconds exceeds propagation_delay + deadline +
  the watchdog's 1 s grace.
- The systemd unit is Type=notify with a watchdog, and its
  TimeoutStopSec exceeds the same deadline + 1 s.
- The probes hit the management server's port and its endpoints; the
  container ports match the configured binds.

Usage: python3 scripts/check_deploy.py path/to/example-app
"""

import os
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml

DEPLOY = os.path.join(os.path.dirname(__file__), "..", "deploy", "kubernetes")
WATCHDOG_GRACE_S = 1


def seconds(text):
    """A humantime duration of the config ("5s", "500ms", "2m") in seconds."""
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)", text):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def load(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return yaml.safe_load(f)


def main(binary):
    problems = []
    config_text = load("configmap.yaml")["data"]["config.toml"]
    config = tomllib.loads(config_text)
    deployment = load("deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config_text)
        path = f.name
    # As deployed: a release binary, whose default profile is prod.
    env = {"APP_PROFILE": "prod", "APP__API__KEY": "a-key-long-enough-for-the-check", "APP__DATABASE__URL": "postgres://app:pw@postgres:5432/orders"}
    declared = {e["name"] for e in container.get("env", [])}
    for name in env:
        if name not in declared:
            problems.append(f"the Deployment does not set {name}")
    check = subprocess.run([binary, "--check", "--config", path], env=env, capture_output=True, text=True)
    os.unlink(path)
    if check.returncode != 0:
        problems.append(f"example-app --check rejects the ConfigMap's config:\n{check.stderr}")

    shutdown = config["shutdown"]
    delay, deadline = seconds(shutdown["propagation_delay"]), seconds(shutdown["deadline"])
    grace = pod["terminationGracePeriodSeconds"]
    needed = delay + deadline + WATCHDOG_GRACE_S
    if grace <= needed:
        problems.append(f"terminationGracePeriodSeconds {grace} must exceed propagation_delay {delay} + deadline {deadline} + {WATCHDOG_GRACE_S} = {needed}")
    if seconds(shutdown["phases"]["drain"]) < seconds(config["http"]["request_timeout"]):
        problems.append("shutdown.phases.drain is shorter than http.request_timeout: accepted requests could be cut off")

    unit = open(os.path.join(DEPLOY, "..", "systemd", "example-app.service")).read()
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    if not stop or int(stop.group(1)) <= deadline + WATCHDOG_GRACE_S:
        problems.append(f"the systemd unit's TimeoutStopSec must exceed shutdown.deadline {deadline} + {WATCHDOG_GRACE_S}")
    if not re.search(r"^Type=notify$", unit, re.M) or not re.search(r"^WatchdogSec=\d+", unit, re.M):
        problems.append("the systemd unit should be Type=notify with a WatchdogSec")

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("admin") != int(config["admin"]["bind"].rsplit(":", 1)[1]):
        problems.append("the admin container port does not match admin.bind")
    if ports.get("http") != int(config["http"]["bind"].rsplit(":", 1)[1]):
        problems.append("the http container port does not match http.bind")
    for probe, endpoint in [("startupProbe", "/startupz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != endpoint or get.get("port") != "admin":
            problems.append(f"{probe} should GET {endpoint} on the admin port, not {get}")

    if problems:
        print("deploy/ has problems:", *problems, sep="\n  - ", file=sys.stderr)
        return 1
    print(f"deploy/: config valid, grace period {grace} s > {needed:g} s, probes on the admin port")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
