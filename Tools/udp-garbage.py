#!/usr/bin/env python3
"""Throw hostile datagrams at a live node and show that it drops and counts them while staying live.

Usage (repository root, with a cluster up):  python3 Tools/udp-garbage.py [NODE] [--count N]

It reads the run folder (.faultline/current or $FAULTLINE_RUN), sends N datagrams of each kind —
random bytes, truncated frames, oversized frames, well-framed votes with a forged signature from a
real validator key, votes for another chain, votes from unknown senders — to NODE's UDP gossip
port, then prints the node's ingress reject counters and height before and after, from its control
port, and its resident memory (VmRSS) before, at its peak during the flood, and after.
Standard library only; the envelope framing is written here independently of the Swift code.
"""
import argparse, hashlib, json, os, random, socket, struct, sys, time, urllib.request


def control(node, token, path):
    request = urllib.request.Request(f"http://127.0.0.1:{node['controlPort']}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=2) as response:
        return response.read().decode()


def rejects(metrics):
    out = {}
    for line in metrics.splitlines():
        if line.startswith("faultline_ingress_rejected_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            out[reason] = int(float(line.rsplit(" ", 1)[1]))
    return out


def rss_kib(run_dir, node):
    """The node process's resident set (VmRSS) from /proc, via the pid file in its folder."""
    try:
        pid = open(os.path.join(run_dir, node["dir"], "pid")).read().strip()
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def envelope(kind, chain_id, sender_hex, payload, signature):
    chain_tag = hashlib.blake2b(chain_id.encode(), digest_size=32).digest()[:8]
    return (bytes([0xFA, 1, kind]) + chain_tag + struct.pack(">I", 0) + bytes.fromhex(sender_hex)
            + struct.pack(">H", len(payload)) + payload + signature)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("node", nargs="?", default="v1")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--run", default=os.environ.get("FAULTLINE_RUN", ".faultline/current"))
    args = parser.parse_args()
    run = json.load(open(os.path.join(args.run, "run.json")))
    token = open(os.path.join(args.run, "token")).read().strip()
    nodes = {n["name"]: n for n in run["nodes"]}
    if args.node not in nodes:
        sys.exit(f"no node {args.node}; nodes are {', '.join(nodes)}")
    target = nodes[args.node]
    member = next(n for n in run["nodes"] if n["name"] != args.node)
    before = rejects(control(target, token, "/metrics"))
    rss_before = rss_kib(args.run, target)
    height_before = json.loads(control(target, token, "/status"))["height"]

    # A height no node has reached: votes for committed heights are dropped before the signature
    # check (counted as stale_height), and these are meant to reach it.
    vote = struct.pack(">QIB", 1 << 40, 0, 0)  # height 2^40, round 0, nil
    kinds = {
        "random bytes": lambda: os.urandom(random.randint(1, 1200)),
        "truncated frame": lambda: envelope(4, run["chainId"], member["publicKey"], vote, os.urandom(64))[:40],
        "oversized frame": lambda: bytes([0xFA]) * 3000,
        "forged signature": lambda: envelope(4, run["chainId"], member["publicKey"], vote, os.urandom(64)),
        "other chain": lambda: envelope(4, "some-other-chain", member["publicKey"], vote, os.urandom(64)),
        "unknown sender": lambda: envelope(4, run["chainId"], os.urandom(32).hex(), vote, os.urandom(64)),
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rss_peak = rss_before
    started = time.time()
    for name, make in kinds.items():
        for index in range(args.count):
            sock.sendto(make(), (target["host"], target["gossipPort"]))
            if index % 10_000 == 0:
                rss_peak = max(rss_peak, rss_kib(args.run, target))
        print(f"sent {args.count} × {name}")
    elapsed = time.time() - started
    time.sleep(1.0)
    after = rejects(control(target, token, "/metrics"))
    height_after = json.loads(control(target, token, "/status"))["height"]
    print(f"\n{args.node} ingress rejects (delta): "
          + ", ".join(f"{k} +{after.get(k, 0) - before.get(k, 0)}" for k in sorted(after) if k != "duplicate"))
    rss_after = rss_kib(args.run, target)
    sent = args.count * len(kinds)
    print(f"{args.node} resident memory: {rss_before // 1024} MiB before, peak {max(rss_peak, rss_after) // 1024} MiB "
          f"while {sent} datagrams arrived in {elapsed:.1f} s ({sent / max(elapsed, 0.001):.0f}/s), "
          f"{rss_after // 1024} MiB after")
    print(f"{args.node} height {height_before} -> {height_after}"
          + (" (still finalizing)" if height_after > height_before else " (NOT finalizing)"))
    sys.exit(0 if height_after > height_before else 1)


if __name__ == "__main__":
    main()
