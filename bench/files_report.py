#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the JSON of bench/file_bench.sh into the Markdown of the files section: the fd pairs
(splice::copy against options::userspace, medians and ranges over the repetitions) and
examples/file_server against its --userspace and nginx under wrk.

usage: files_report.py FILES.json
"""
import json
import statistics
import sys

LABELS = {"file_to_tcp": "file (page cache) -> TCP", "tcp_to_file_disk": "TCP -> file on disk (ext4)",
          "tcp_to_file_tmpfs": "TCP -> file on tmpfs", "file_to_file_disk": "file -> file, disk",
          "file_to_file_tmpfs": "file -> file, tmpfs", "file_to_file_cross": "file -> file, tmpfs -> disk",
          "file_to_file_xfs": "file -> file, XFS (reflink)", "file_to_file_btrfs": "file -> file, btrfs (reflink)"}
med = statistics.median


def pairs(meta, runs):
    """Prints the table of fd pairs; a pair that did not run says why (SKIP and its reason)."""
    rows, why = {}, {}
    for b in runs:
        if b.get("run_type") != "iteration":
            continue
        pair, path = b["name"].split("/")[0][3:].rsplit("_", 1)  # BM_file_to_tcp_splice/... -> file_to_tcp, splice
        if b.get("error_occurred"):
            why[pair] = b.get("error_message", "failed")
            continue
        rows.setdefault(pair, {}).setdefault(path, []).append((b["bytes_per_second"] / 1e6, b["cpu_s_per_GiB"]))
    span = lambda xs: f"{min(xs):.0f}-{max(xs):.0f}"
    print(f"Each pair moves {meta['mib']} MiB per iteration, 2 iterations per repetition, {meta['reps']} repetitions "
          "interleaved at random; medians, ranges over the repetitions.")
    print()
    print("| pair | splice MB/s (range) | user-space MB/s (range) | throughput | copier CPU s/GiB, splice / user "
          "| copier CPU |")
    print("|---|---|---|---|---|---|")
    for pair, label in LABELS.items():
        r = rows.get(pair, {})
        if "splice" not in r or "userspace" not in r:
            print(f"| {label} | {why.get(pair, 'failed')} | | | | |")
            continue
        s_mb, s_cpu = zip(*r["splice"])
        u_mb, u_cpu = zip(*r["userspace"])
        print(f"| {label} | {med(s_mb):.0f} ({span(s_mb)}) | {med(u_mb):.0f} ({span(u_mb)}) | "
              f"{med(s_mb) / med(u_mb):.2f}x | {med(s_cpu):.3f} / {med(u_cpu):.3f} | {med(s_cpu) / med(u_cpu):.2f}x |")
    print()
    print("On XFS and btrfs copy_file_range shares the source's extents instead of copying them; its MB/s "
          "is bounded by the calls (options::max_splice, 1 MiB each), not by bytes.")
    print()


def server(meta, runs):
    rows = {}
    for r in runs:
        sec = r["usec"] / 1e6
        rows.setdefault((r["file"], r["server"]), []).append(
            (r["requests"] / sec, r["bytes"] / sec / 1e6, r["cpu_s"] / (r["bytes"] / 2**30), r["errors"]))
    print(f"wrk -t2 -c{meta['conns']} -d{meta['secs']}s (64 MiB: twice as long), keep-alive, {meta['server_reps']} "
          "repeats per row interleaved across the servers; medians (ranges). MB/s counts what wrk read, heads included. "
          "Server CPU is the whole process's (nginx: master and workers). "
          + threads(meta))
    print()
    print("| file | server | requests/s | MB/s | server CPU s/GiB | errors | requests/s vs nginx | vs --userspace |")
    print("|---|---|---|---|---|---|---|---|")
    for size in ("1k", "64k", "1m", "64m"):
        base = {srv: med([r[0] for r in rows.get((size, srv), [(0,)])]) for srv in ("nginx", "userspace")}
        for srv, label in (("splice", "file_server"), ("userspace", "file_server --userspace"), ("nginx", "nginx")):
            r = rows.get((size, srv))
            if not r:
                continue
            rps, mbs, cpu, err = zip(*r)
            vs = lambda b: f"{med(rps) / b:.2f}x" if b else "-"
            print(f"| {size.upper().replace('K', ' KiB').replace('M', ' MiB')} | {label} | {med(rps):.0f} "
                  f"({min(rps):.0f}-{max(rps):.0f}) | {med(mbs):.0f} ({min(mbs):.0f}-{max(mbs):.0f}) "
                  f"| {med(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f}) | {sum(err)} | {vs(base['nginx'])} "
                  f"| {vs(base['userspace'])} |")


def threads(meta):
    """Says how many threads each server ran (older runs: file_server a thread per connection, nginx 1 worker)."""
    t, w = meta.get("file_server_threads", meta["conns"]), meta.get("nginx_workers", 1)
    return (f"file_server runs one thread per connection ({t} threads serving); nginx runs {w} worker "
            f"process{'es' if w != 1 else ''}{' (reuseport)' if 'nginx_workers' in meta else ''}, on {meta['cpus']} CPUs.")


def section(doc):
    """Prints the section's body (its heading is the caller's)."""
    meta = doc["meta"]
    print(f"Kernel: {meta['kernel']}; {meta['cpus']} CPUs; {meta['date']}; command: {meta['command']}")
    print()
    pairs(meta, doc["pairs"])
    if doc.get("server"):
        server(meta, doc["server"])
    for s in meta.get("skipped", []):
        print(f"\n({s})")


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        section(json.load(f))
