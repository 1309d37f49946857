#!/usr/bin/env python3
"""The RPC outage with HAProxy in front of the same rpc nodes, beside the Faultline gateway.

Usage: Tools/rpc-haproxy-compare.py [SCENARIO.toml ...]
       (default: Topologies/rpc-primary-down.toml, rpc-primary-hangs.toml, rpc-frozen-head.toml)

For each scenario: writes a copy with fixed ports and one more client, "external", pointed at an
HAProxy (Debian package `haproxy`) configured with its health checks (an eth_blockNumber POST every
200 ms, `fall 3 rise 2`, the primary as the server and the others as backups, `retries 2` with
`option redispatch`); starts HAProxy; runs the scenario with `faultline run`; prints the clients side
by side: errors, time to first success and to 99% success, p99, stale answers, amplification.
HAProxy's health check sees HTTP status only: a frozen head answers 200, so it keeps serving it.

Environment: FAULTLINE (default .build/release/faultline; build it with `swift build -c release`),
HAPROXY (default: haproxy on PATH), BASE_PORT (default 27000), KEEP=1 keeps the work folder.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message):
    sys.exit(f"rpc-haproxy-compare: {message}")


def variant(path, base_port, haproxy_port):
    """The scenario's text with base_port set and the external client added; its rpc nodes' ports."""
    text = open(path).read()
    topology = tomllib.loads(text)
    if "rpc_load" not in topology:
        fail(f"{path}: no [rpc_load] table: nothing to compare")
    nodes = topology.get("node", [])
    rpc = [(index, node) for index, node in enumerate(nodes) if node.get("role") == "rpc"]
    if not rpc:
        fail(f"{path}: no node with role = \"rpc\"")
    clients = topology["rpc_load"].get("clients", ["single", "fallback", "gateway"]) + ["external"]
    text, count = re.subn(r"(?m)^\[cluster\]\s*$", f"[cluster]\nbase_port = {base_port}", text, count=1)
    if count != 1 or re.search(r"(?m)^base_port\s*=", text.split("[cluster]", 1)[1].split("\n[", 1)[0].replace(f"base_port = {base_port}", "", 1)):
        fail(f"{path}: expected one [cluster] table without base_port")
    client_line = "clients = " + json.dumps(clients) + f"\nendpoint = \"127.0.0.1:{haproxy_port}\""
    text, count = re.subn(r"(?m)^clients\s*=.*$", client_line, text, count=1)
    if count != 1:
        text, count = re.subn(r"(?m)^\[rpc_load\]\s*$", "[rpc_load]\n" + client_line, text, count=1)
    ports = []
    for position, (index, node) in enumerate(rpc):
        tier = node.get("rpc_tier", 0 if position == 0 else 1)
        ports.append((node["name"], base_port + 3 * len(nodes) + index, tier))
    return text, ports


def haproxy_config(haproxy_port, ports):
    check_body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
    lowest = min(tier for _, _, tier in ports)
    servers = "\n".join(
        f"    server {name} 127.0.0.1:{port} check" + ("" if tier == lowest else " backup")
        for name, port, tier in ports)
    return f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 200ms
    timeout client 5s
    timeout server 1000ms
    retries 2
    option redispatch
frontend rpc
    bind 127.0.0.1:{haproxy_port}
    default_backend nodes
backend nodes
    option allbackups
    option httpchk
    http-check send meth POST uri / hdr Content-Type application/json body '{check_body}'
    http-check expect status 200
    default-server inter 200ms fall 3 rise 2
{servers}
"""


def row(cells, widths):
    return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths))


def describe(report):
    rpc = report.get("rpc")
    if not rpc:
        fail("the report has no rpc section (did the RPC load run?)")
    lines = []
    widths = [10, 9, 14, 14, 9, 7, 13]
    for fault in rpc["faults"]:
        lines.append(f"during {fault['id']}: {fault['description']}")
        lines.append("  " + row(["client", "errors", "first success", "99% success", "p99", "stale", "amplification"], widths))
        for entry in fault["clients"]:
            summary = entry["summary"]
            name = "haproxy" if summary["client"] == "external" else summary["client"]
            first = "never" if entry.get("firstSuccessMs") is None else f"{entry['firstSuccessMs']} ms"
            failover = "never" if entry.get("failoverMs") is None else f"{entry['failoverMs']} ms"
            p99 = "-" if summary.get("latencyP99Ms") is None else f"{summary['latencyP99Ms']} ms"
            amplification = summary.get("amplification")
            # HAProxy's retries happen inside it; the client sees one request each.
            shown = "(inside)" if name == "haproxy" else ("-" if amplification is None else f"{amplification:.2f}x")
            lines.append("  " + row([name, f"{summary['errorPercent']:.2f}%", first, failover, p99,
                                     summary["staleAnswers"], shown], widths))
    return lines


def compare(scenario, faultline, haproxy, base_port, work):
    haproxy_port = base_port - 1
    text, ports = variant(scenario, base_port, haproxy_port)
    name = os.path.splitext(os.path.basename(scenario))[0]
    scenario_path = os.path.join(work, name + "-with-haproxy.toml")
    with open(scenario_path, "w") as out:
        out.write(text)
    config_path = os.path.join(work, name + "-haproxy.cfg")
    with open(config_path, "w") as out:
        out.write(haproxy_config(haproxy_port, ports))
    check = subprocess.run([haproxy, "-c", "-f", config_path], capture_output=True, text=True)
    if check.returncode != 0:
        fail(f"haproxy refused {config_path}: {check.stdout}{check.stderr}")
    proxy = subprocess.Popen([haproxy, "-db", "-f", config_path], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(work, name + "-haproxy.log"), "w"))
    try:
        time.sleep(0.3)
        if proxy.poll() is not None:
            fail(f"haproxy exited at start; see {work}/{name}-haproxy.log")
        print(f"{name}: HAProxy on 127.0.0.1:{haproxy_port} over " +
              ", ".join(f"{n}:{p}{'' if t == min(x[2] for x in ports) else ' (backup)'}" for n, p, t in ports))
        run = subprocess.run([faultline, "run", scenario_path], cwd=work, capture_output=True, text=True)
        if run.returncode not in (0, 1):
            fail(f"faultline run {scenario_path} exited {run.returncode}:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
    current = os.path.realpath(os.path.join(work, ".faultline", "current"))
    with open(os.path.join(current, "report.json")) as handle:
        report = json.load(handle)
    for line in describe(report):
        print("  " + line)
    print(f"  report: {os.path.join(current, 'report.html')}")


def main():
    scenarios = sys.argv[1:] or [os.path.join(ROOT, "Topologies", name) for name in
                                 ["rpc-primary-down.toml", "rpc-primary-hangs.toml", "rpc-frozen-head.toml"]]
    faultline = os.environ.get("FAULTLINE", os.path.join(ROOT, ".build", "release", "faultline"))
    if not os.access(faultline, os.X_OK):
        fail(f"no faultline binary at {faultline}; build one with `swift build -c release` or set FAULTLINE")
    haproxy = os.environ.get("HAPROXY") or shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if not haproxy:
        fail("haproxy is not installed; on Debian: apt-get install haproxy")
    base_port = int(os.environ.get("BASE_PORT", "27000"))
    work = tempfile.mkdtemp(prefix="faultline-haproxy-")
    try:
        for index, scenario in enumerate(scenarios):
            compare(os.path.abspath(scenario), faultline, haproxy, base_port + 100 * index, work)
    finally:
        if os.environ.get("KEEP") == "1":
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
