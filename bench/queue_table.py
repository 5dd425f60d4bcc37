#!/usr/bin/env python3
"""Turns ferry-queue-bench's output (store, sync, messages/s per line, on
stdin) into the Markdown table bench/bridge.sh puts in RESULTS-bridge.md."""
import sys

rows = {}
for line in sys.stdin.read().splitlines():
    parts = line.split("\t")
    if len(parts) == 3:
        rows[(parts[0], parts[1])] = float(parts[2])
print("| queue_sync | segmented log, msg/s | SQLite table, msg/s | log / SQLite |")
print("| --- | ---: | ---: | ---: |")
for sync in ("write", "fsync"):
    log, sql = rows.get(("log", sync)), rows.get(("sqlite", sync))
    if log and sql:
        print(f"| {sync} | {log:,.0f} | {sql:,.0f} | {log / sql:.2f}x |")
