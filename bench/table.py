#!/usr/bin/env python3
"""Turns bench/run.sh results into the table of medians and ratios.

Input: a TSV of (scenario, broker, repetition, path to ferry-bench --json).
Output: a Markdown table on stdout. Every figure is the median over the
repetitions; the ratio is ferry's median divided by mosquitto's.

With --splice FILE, the output (after the text of --header) replaces what
lies between the two marker lines in FILE (appended with the markers if FILE
has none), so that hand-written analysis around it survives a new run.
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


def others(r):
    """CPU the rest of the machine used during one run (100% = one core):
    the whole machine's busy time over the run's wall time, less what the
    broker and ferry-bench used."""
    if r.get("wall_s", 0) <= 0 or r.get("broker_cpu_pct", -1) < 0:
        return None
    ours = (r["broker_cpu_pct"] + r["bench_cpu_pct"]) / 100 * r["elapsed_s"]
    return max(0.0, 100 * (r["machine_cpu_s"] - ours) / r["wall_s"])


def cpu_note(runs, scenario, brokers=("ferry", "mosquitto")):
    parts = []
    for b in brokers:
        bc = metric(runs, scenario, b, lambda r: r["broker_cpu_pct"])
        gc = metric(runs, scenario, b, lambda r: r["bench_cpu_pct"])
        oc = metric(runs, scenario, b, others)
        if bc is not None:
            o = f", others {oc:.0f}%" if oc is not None else ""
            parts.append(f"{b}: broker {bc:.0f}%, bench {gc:.0f}%{o}")
    return "CPU " + "; ".join(parts) if parts else ""


MARK_BEGIN = "<!-- bench/run.sh results: begin (generated, replaced by the next run) -->"
MARK_END = "<!-- bench/run.sh results: end -->"


def splice(path, text):
    try:
        with open(path) as f:
            old = f.read()
    except OSError:
        old = ""
    block = MARK_BEGIN + "\n" + text.rstrip("\n") + "\n" + MARK_END
    if MARK_BEGIN in old and MARK_END in old:
        head = old[: old.index(MARK_BEGIN)]
        tail = old[old.index(MARK_END) + len(MARK_END):]
        new = head + block + tail
    else:
        new = old + ("\n" if old and not old.endswith("\n") else "") + block + "\n"
    with open(path, "w") as f:
        f.write(new)


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
    ap.add_argument("--header", help="Markdown to put before the table")
    ap.add_argument("--splice", help="write into this file between the markers")
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
    for s, label in (("fanin_q0", "fan-in 100→1, QoS 0 (workers = 2)"),
                     ("fanin_q1", "fan-in 100→1, QoS 1"),
                     ("fanout", "fan-out 1→100, QoS 0")):
        row(label + ", delivered", s, "msg/s", rate, loss_note(runs, s) + "; " + cpu_note(runs, s))
    ms = lambda key: (lambda r: r[key] / 1e6 if r[key] >= 0 else None)
    lat_rate = lambda b: metric(runs, "latency", b, lambda r: r["recv_rate"])
    row("latency at 10k msg/s, p50", "latency", "ms", ms("latency_p50_ns"),
        f"delivered: ferry {fmt(lat_rate('ferry'), 'msg/s')}, "
        f"mosquitto {fmt(lat_rate('mosquitto'), 'msg/s')}; " + loss_note(runs, "latency"),
        lower_better=True)
    def reps(b):
        vals = []
        for r in runs.get(("latency", b), []):
            try:
                vals.append(f"{r['latency_p99_ns'] / 1e6:.1f}")
            except (KeyError, TypeError):
                vals.append("—")
        return ", ".join(vals)
    row("latency at 10k msg/s, p99", "latency", "ms", ms("latency_p99_ns"),
        f"each run (ms): ferry {reps('ferry')}; mosquitto {reps('mosquitto')}; "
        + cpu_note(runs, "latency"), lower_better=True)
    row("latency at 10k msg/s, p99.9", "latency", "ms", ms("latency_p999_ns"), lower_better=True)
    row("latency at 10k msg/s, max", "latency", "ms", ms("latency_max_ns"), lower_better=True)
    for s, label in (("pair_q0_apart", "1→1 at 10k msg/s, QoS 0, clients on different workers"),
                     ("pair_q0_same", "1→1 at 10k msg/s, QoS 0, clients on the same worker"),
                     ("pair_q1_apart", "1→1 at 10k msg/s, QoS 1, clients on different workers"),
                     ("pair_q1_same", "1→1 at 10k msg/s, QoS 1, clients on the same worker")):
        pair_rate = lambda b: metric(runs, s, b, lambda r: r["recv_rate"])
        row(label + ", p50", s, "ms", ms("latency_p50_ns"),
            f"delivered: ferry {fmt(pair_rate('ferry'), 'msg/s')}, "
            f"mosquitto {fmt(pair_rate('mosquitto'), 'msg/s')}; " + loss_note(runs, s),
            lower_better=True)
        row(label + ", p99", s, "ms", ms("latency_p99_ns"), cpu_note(runs, s), lower_better=True)
    conns = metric(runs, "idle", "ferry", lambda r: r["connected"])
    mconns = metric(runs, "idle", "mosquitto", lambda r: r["connected"])
    row("idle connections: connect rate", "idle", "conn/s", lambda r: r["connect_rate"],
        f"connected: ferry {fmt(conns, '')}, mosquitto {fmt(mconns, '')}")
    row("idle connections: broker RSS per connection", "idle", "B",
        lambda r: (r["broker_rss"] - r["broker_rss_start"]) / r["connected"],
        "RSS growth from before the first connect to all connected", lower_better=True)
    row("connections arriving 64 at a time, connect rate", "connect64", "conn/s",
        lambda r: r["connect_rate"],
        f"connected: ferry {fmt(metric(runs, 'connect64', 'ferry', lambda r: r['connected']), '')}, "
        f"mosquitto {fmt(metric(runs, 'connect64', 'mosquitto', lambda r: r['connected']), '')}")
    row("connect burst: 256 connecting at once, connect rate", "burst", "conn/s",
        lambda r: r["connect_rate"],
        f"connected: ferry {fmt(metric(runs, 'burst', 'ferry', lambda r: r['connected']), '')}, "
        f"mosquitto {fmt(metric(runs, 'burst', 'mosquitto', lambda r: r['connected']), '')}")
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

    all_others = [others(r) for rs in runs.values() for r in rs if r]
    all_others = sorted(v for v in all_others if v is not None)
    lines = []
    if a.header:
        with open(a.header) as f:
            lines.append(f.read().rstrip("\n"))
        lines.append("")
    lines.append(f"ferry-bench suite ({a.mode}, {a.reps} repetition(s), {a.elapsed} s); "
                 "medians; ferry ÷ mosquitto.")
    lines.append("ferryd: workers = 2 unless noted; mosquitto 2.0.11: one thread.")
    if all_others:
        lines.append(
            "Other processes on the machine during the runs (CPU beside the broker and "
            f"ferry-bench, 100% = one core): median {statistics.median(all_others):.0f}%, "
            f"max {all_others[-1]:.0f}%.")
    lines.append("")
    lines.append("| scenario | ferry | mosquitto | ferry ÷ mosquitto | notes |")
    lines.append("|---|---|---|---|---|")
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    text = "\n".join(lines) + "\n"
    if a.splice:
        splice(a.splice, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
