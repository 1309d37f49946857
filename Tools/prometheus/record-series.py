#!/usr/bin/env python3
"""Turns a run scraped by Prometheus (`faultline run FILE --prometheus`) into the input series of a
`promtool test rules` file, so the alert rules are tested on what real nodes reported.

    Tools/prometheus/record-series.py RUN_DIR OUT.yml [--faultline .build/release/faultline]

It serves the run's stored data again (`faultline prometheus --run RUN_DIR`), reads every series the
rules use at one-second steps from the first scrape to the last, writes them as `input_series`
(time 0 = the first scrape; `_` where a node was not scraped), prints the run's fault windows on
that clock, and stops Prometheus. Add the `alert_rule_test` entries by hand: which alert should fire
when, and which should stay silent.
"""
import json, os, subprocess, sys, time, urllib.parse, urllib.request

METRICS = ["faultline_height", "faultline_round", "faultline_votes_dropped_total", "faultline_stopped",
           "faultline_state_mismatch_total", "faultline_dispute_games_open", "faultline_mempool_txs",
           "faultline_l2_queue_txs", "faultline_gateway_upstream_in_use", "faultline_gateway_policy_total",
           "faultline_udp_receive_dropped_total", "up"]
KEEP = ["__name__", "cluster", "node", "role", "job", "reason", "upstream", "counter", "carries"]


def get(url, path, **params):
    with urllib.request.urlopen(url + path + "?" + urllib.parse.urlencode(params), timeout=30) as answer:
        return json.load(answer)["data"]


def main():
    args = sys.argv[1:]
    faultline = ".build/release/faultline"
    if "--faultline" in args:
        i = args.index("--faultline"); faultline = args[i + 1]; del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    run, out = args
    served = subprocess.run([faultline, "prometheus", "--run", run], capture_output=True, text=True)
    if served.returncode != 0:
        sys.exit(f"faultline prometheus failed: {served.stdout}{served.stderr}")
    url = open(os.path.join(run, "prometheus", "url")).read().strip()
    try:
        for _ in range(100):
            try:
                get(url, "/api/v1/query", query="1"); break
            except Exception:
                time.sleep(0.1)
        # The run's span: the first and last sample any node answered (serving the data again scrapes
        # targets that are gone, adding `up == 0` samples after the run: those are left out).
        span = get(url, "/api/v1/query", query="max_over_time(timestamp(faultline_height)[6h:1s])")
        starts = get(url, "/api/v1/query", query="min_over_time(timestamp(faultline_height)[6h:1s])")
        end = max(float(r["value"][1]) for r in span["result"])
        start = min(float(r["value"][1]) for r in starts["result"])
        start, end = int(start), int(end) + 1
        lines = ["    input_series:"]
        for metric in METRICS:
            for series in get(url, "/api/v1/query_range", query=metric, start=start, end=end, step="1s")["result"]:
                labels = {k: v for k, v in series["metric"].items() if k in KEEP}
                values = {int(float(t)) - start: v for t, v in series["values"]}
                text = " ".join(values.get(s, "_") for s in range(0, end - start + 1))
                selector = labels.pop("__name__") + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                lines.append(f"      - series: '{selector}'")
                lines.append(f"        values: '{text}'")
        with open(out, "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {out}: {end - start + 1} s of series from {run}")
        faults = os.path.join(run, "faults.jsonl")
        if os.path.exists(faults):
            for line in open(faults):
                event = json.loads(line)
                print(f"  {event.get('event')} {event.get('id')} at {event['t'] / 1000 - start:.1f} s: {event.get('description', '')}")
    finally:
        subprocess.run([faultline, "prometheus", "--run", run, "--stop"], capture_output=True)


if __name__ == "__main__":
    main()
