#!/usr/bin/env python3
"""Turns bench/run.sh results into the table of medians and ratios.

Input: a TSV of (scenario, broker, repetition, path to ferry-bench --json).
Output: a Markdown table on stdout. Every figure is the median over the
repetitions; the ratio is ferry's median divided by mosquitto's.
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict


def load(path):
    runs = defaultdict(list)  # (scenario, broker) -> [json]
    with open(path) as f:
        for line in f:
            scenario, broker, _rep, file = line.rstrip("\n").split("\t")
            try:
                with open(file) as j:
                    runs[(scenario, broker)].append(json.load(j))
            except (OSError, ValueError):
                runs[(scenario, broker)].append({})
    return runs


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def metric(runs, scenario, broker, fn):
    out = []
    for r in runs.get((scenario, broker), []):
        try:
            v = fn(r)
        except (KeyError, TypeError, ZeroDivisionError):
            v = None
        out.append(v)
    return median(out)


def fmt(v, unit):
    if v is None:
        return "—"
    if unit == "msg/s" or unit == "conn/s":
        return f"{v:,.0f} {unit}"
    if unit == "ms":
        return f"{v:.2f} ms"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "B":
        return f"{v:,.0f} B"
    return f"{v:,.0f}"


def ratio(f, m):
    if f is None or m is None or m == 0:
        return "—"
    return f"{f / m:.2f}"


def lost_pct(r):
    return 100.0 * r["lost"] / r["expected"] if r["expected"] > 0 else 0.0


def cpu_note(runs, scenario, brokers=("ferry", "mosquitto")):
    parts = []
    for b in brokers:
        bc = metric(runs, scenario, b, lambda r: r["broker_cpu_pct"])
        gc = metric(runs, scenario, b, lambda r: r["bench_cpu_pct"])
        if bc is not None:
            parts.append(f"{b}: broker {bc:.0f}%, bench {gc:.0f}%")
    return "CPU " + "; ".join(parts) if parts else ""


def loss_note(runs, scenario, mosq_scenario=None):
    f = metric(runs, scenario, "ferry", lost_pct)
    m = metric(runs, mosq_scenario or scenario, "mosquitto", lost_pct)
    def p(v):
        return "—" if v is None else f"{v:.2f}%"
    return f"lost: ferry {p(f)}, mosquitto {p(m)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--reps", default="?")
    ap.add_argument("--mode", default="full")
    ap.add_argument("--elapsed", default="?")
    a = ap.parse_args()
    runs = load(a.results)
    rows = []

    def row(label, scenario, unit, fn, notes="", mosq_scenario=None, lower_better=False):
        if not any(k[0] == scenario for k in runs):
            return
        f = metric(runs, scenario, "ferry", fn)
        m = metric(runs, mosq_scenario or scenario, "mosquitto", fn)
        better = " (lower is better)" if lower_better else ""
        rows.append((label, fmt(f, unit), fmt(m, unit), ratio(f, m) + better, notes))

    rate = lambda r: r["recv_rate"]
    for s, label in (("fanin_q0", "fan-in 100→1, QoS 0"), ("fanin_q1", "fan-in 100→1, QoS 1"),
                     ("fanout", "fan-out 1→100, QoS 0")):
        row(label + ", delivered", s, "msg/s", rate, loss_note(runs, s) + "; " + cpu_note(runs, s))
    ms = lambda key: (lambda r: r[key] / 1e6 if r[key] >= 0 else None)
    row("latency at 10k msg/s, p50", "latency", "ms", ms("latency_p50_ns"), lower_better=True)
    row("latency at 10k msg/s, p99", "latency", "ms", ms("latency_p99_ns"),
        cpu_note(runs, "latency"), lower_better=True)
    row("latency at 10k msg/s, p99.9", "latency", "ms", ms("latency_p999_ns"), lower_better=True)
    row("latency at 10k msg/s, max", "latency", "ms", ms("latency_max_ns"), lower_better=True)
    conns = metric(runs, "idle", "ferry", lambda r: r["connected"])
    mconns = metric(runs, "idle", "mosquitto", lambda r: r["connected"])
    row("idle connections: connect rate", "idle", "conn/s", lambda r: r["connect_rate"],
        f"connected: ferry {fmt(conns, '')}, mosquitto {fmt(mconns, '')}")
    row("idle connections: broker RSS per connection", "idle", "B",
        lambda r: (r["broker_rss"] - r["broker_rss_start"]) / r["connected"],
        "RSS growth from before the first connect to all connected", lower_better=True)
    row("retained: store (QoS 1, 10 publishers)", "retained_store", "msg/s",
        lambda r: r["send_rate"])
    got = lambda s, b: metric(runs, s, b, lambda r: r["received"])
    row("retained: `#` subscribe, time to last message", "retained", "s",
        lambda r: r["last_recv_s"] if r["received"] > 0 else None,
        f"received: ferry {fmt(got('retained', 'ferry'), '')}, "
        f"mosquitto {fmt(got('retained', 'mosquitto'), '')}", lower_better=True)
    row("persistent session: 1 publisher, QoS 1, into the offline session", "offline_store",
        "msg/s", lambda r: r["send_rate"], "ferry persists the queue in SQLite; mosquitto "
        "runs with persistence false")
    row("persistent session: reconnect, time to last queued message", "offline", "s",
        lambda r: r["last_recv_s"] if r["received"] > 0 else None,
        f"received: ferry {fmt(got('offline', 'ferry'), '')}, "
        f"mosquitto {fmt(got('offline', 'mosquitto'), '')}", lower_better=True)
    row("fan-in 100→1, QoS 0, ferryd workers = 1", "workers1", "msg/s", rate,
        loss_note(runs, "workers1", "fanin_q0") + "; compared with mosquitto's fan-in QoS 0",
        mosq_scenario="fanin_q0")
    for label in ("bridge", "chain"):
        rows.append((label, "skipped: bridges not implemented yet", "", "", ""))

    print(f"ferry-bench suite ({a.mode}, {a.reps} repetition(s), {a.elapsed} s); "
          "medians; ferry ÷ mosquitto")
    print("ferryd: workers = 2 unless noted; mosquitto 2.0.11: one thread.")
    print()
    print("| scenario | ferry | mosquitto | ferry ÷ mosquitto | notes |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
