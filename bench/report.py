#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns tcp_bench's JSON output into a Markdown summary (splice / user-space ratios from the same
run) and, when gnuplot is installed, a PNG chart of MB/s and copier CPU per GiB against chunk size.

usage: report.py RESULTS.json [CHART.png]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def key(run_name):
    """BM_x/1024/iterations:100/manual_time -> BM_x/1024"""
    return "/".join(p for p in run_name.split("/") if p != "manual_time" and not p.startswith("iterations:"))


def medians(path):
    """Returns {run name: median counters} for every benchmark of the run."""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[key(b["run_name"])] = b
    for b in doc["benchmarks"]:  # a single repetition has no aggregates: its one run is the median
        if b.get("run_type") == "iteration" and key(b["run_name"]) not in out:
            out[key(b["run_name"])] = b
    return doc["context"], out


def runs(path):
    """Returns {run name: [the value of each repetition's run, by repetition index]}."""
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") == "iteration" and not b.get("error_occurred"):
            out.setdefault(key(b["run_name"]), {})[b.get("repetition_index", 0)] = b
    return out


RUNS = {}


def spread(a, b, field):
    """The range of a / b over the repetitions, as "(0.91x-1.05x)": the lowest a over the highest b
    to the highest a over the lowest b. Google Benchmark interleaves the repetitions of all cases at
    random, so repetition i of a and of b did not run side by side and pairing them would mean
    nothing. Empty with one repetition."""
    va = [r[field] for r in RUNS.get(a, {}).values() if r.get(field)]
    vb = [r[field] for r in RUNS.get(b, {}).values() if r.get(field)]
    if len(va) < 2 or len(vb) < 2:
        return ""
    return f" ({min(va) / max(vb):.2f}x-{max(va) / min(vb):.2f}x)"


def size(n):
    n = int(n)
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def main(path, chart=None):
    """Prints the Markdown of tcp_bench's JSON at path; writes the chart to chart (with gnuplot)."""
    context, m = medians(path)
    RUNS.clear()
    RUNS.update(runs(path))
    chunks = sorted({int(k.split("/")[1]) for k in m if k.startswith("BM_stream_splice/")})
    reps = next(iter(m.values())).get("repetitions", 1) if m else 0
    print(f"Machine: {context.get('num_cpus')} CPUs at {context.get('mhz_per_cpu')} MHz; "
          f"medians of {reps} repetitions interleaved at random; in brackets, the range of each ratio: "
          f"the lowest repetition of one side over the highest of the other, and the reverse.\n")
    print("| chunk | splice MB/s | user-space MB/s | throughput ratio | splice CPU s/GiB | user-space CPU s/GiB "
          "| CPU ratio | all threads CPU ratio | syscalls/MiB splice / user |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in chunks:
        s, u = m[f"BM_stream_splice/{c}"], m[f"BM_stream_userspace/{c}"]
        sb, ub = s["bytes_per_second"] / 1e6, u["bytes_per_second"] / 1e6
        rows.append((c, sb, ub, s["cpu_s_per_GiB"], u["cpu_s_per_GiB"]))
        a, b = f"BM_stream_splice/{c}", f"BM_stream_userspace/{c}"
        print(f"| {size(c)} | {sb:.0f} | {ub:.0f} | **{sb / ub:.2f}x**{spread(a, b, 'bytes_per_second')} | "
              f"{s['cpu_s_per_GiB']:.3f} | {u['cpu_s_per_GiB']:.3f} | "
              f"**{s['cpu_s_per_GiB'] / u['cpu_s_per_GiB']:.2f}x**{spread(a, b, 'cpu_s_per_GiB')} | "
              f"{s['all_cpu_s_per_GiB'] / u['all_cpu_s_per_GiB']:.2f}x | "
              f"{s['calls_per_MiB']:.1f} / {u['calls_per_MiB']:.1f} |")

    for variant, title in (("nonblocking", "non-blocking fds, poll-driven"),
                           ("bigbuf", "4 MiB socket buffers on every socket"),
                           ("pinned", "copier alone on CPU 1, writer and reader on CPU 0"),
                           ("unix_to_tcp", "unix socket -> TCP, splice_from_unix on"),
                           ("tcp_to_unix", "TCP -> unix socket (default)")):
        cs = sorted({int(k.split("/")[1]) for k in m if k.startswith(f"BM_stream_{variant}_splice/")})
        if not cs:
            continue
        print(f"\n| {title} | splice MB/s | user-space MB/s | throughput ratio | CPU ratio |")
        print("|---|---|---|---|---|")
        for c in cs:
            s, u = m[f"BM_stream_{variant}_splice/{c}"], m[f"BM_stream_{variant}_userspace/{c}"]
            a, b = f"BM_stream_{variant}_splice/{c}", f"BM_stream_{variant}_userspace/{c}"
            print(f"| {size(c)} | {s['bytes_per_second'] / 1e6:.0f} | {u['bytes_per_second'] / 1e6:.0f} | "
                  f"**{s['bytes_per_second'] / u['bytes_per_second']:.2f}x**{spread(a, b, 'bytes_per_second')} | "
                  f"**{s['cpu_s_per_GiB'] / u['cpu_s_per_GiB']:.2f}x**{spread(a, b, 'cpu_s_per_GiB')} |")

    print("\n| where the CPU goes (s/GiB), splice / user space | copier | writer | reader | all threads "
          "| machine busy | stolen |")
    print("|---|---|---|---|---|---|---|")
    pct = lambda r, k: f"{100 * r[k]:.0f}%" if k in r else "-"
    for c in chunks:
        s, u = m[f"BM_stream_splice/{c}"], m[f"BM_stream_userspace/{c}"]
        if "writer_cpu_s_per_GiB" in s:
            print(f"| {size(c)} | " + " | ".join(f"{s[k]:.3f} / {u[k]:.3f}" for k in (
                "cpu_s_per_GiB", "writer_cpu_s_per_GiB", "reader_cpu_s_per_GiB", "all_cpu_s_per_GiB")) +
                  " | " + " | ".join(f"{pct(s, k)} / {pct(u, k)}" for k in ("machine_busy", "machine_steal")) + " |")

    print("\n| short copies (new connections) | default copies/s | eager splice copies/s | user-space copies/s "
          "| default / user-space |")
    print("|---|---|---|---|---|")
    for n in (4096, 65536):
        d, e, u = (m.get(f"BM_short_{p}/{n}") for p in ("splice", "eager", "userspace"))
        if d and e and u:
            print(f"| {size(n)} each | {d['items_per_second']:.0f} | {e['items_per_second']:.0f} | "
                  f"{u['items_per_second']:.0f} | **{d['items_per_second'] / u['items_per_second']:.2f}x**"
                  f"{spread(f'BM_short_splice/{n}', f'BM_short_userspace/{n}', 'items_per_second')} |")

    print("\n| 64 B ping-pong through two copies | p50 us | p99 us | p99 / user-space |")
    print("|---|---|---|---|")
    base = m.get("BM_pingpong_userspace")
    for p, label in (("splice", "default"), ("eager", "eager splice"), ("userspace", "user space")):
        r = m.get(f"BM_pingpong_{p}")
        if r and base:
            print(f"| {label} | {r['p50_us']:.1f} | {r['p99_us']:.1f} | {r['p99_us'] / base['p99_us']:.2f}x |")

    for sweep, what in (("pipe_size", "pipe size"), ("max_splice", "bytes per splice call")):
        keys = sorted((k for k in m if k.startswith(f"BM_stream_{sweep}/")),
                      key=lambda k: tuple(int(x) for x in k.split("/")[1:]))
        if not keys:
            continue
        print(f"\n| {what} sweep (splice from the first byte) | chunk | MB/s | CPU s/GiB |")
        print("|---|---|---|---|")
        for k in keys:
            _, chunk, val = k.split("/")
            print(f"| {size(val)} | {size(chunk)} | {m[k]['bytes_per_second'] / 1e6:.0f} | {m[k]['cpu_s_per_GiB']:.3f} |")

    if rows and chart and shutil.which("gnuplot"):
        with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as d:
            for c, sb, ub, sc, uc in rows:
                d.write(f"{c >> 10} {sb} {ub} {sc} {uc}\n")
        script = f"""
set terminal pngcairo size 1000,420 font ',10'
set output '{chart}'
set multiplot layout 1,2 title 'TCP to TCP through splice::copy (median of interleaved runs)'
set logscale x 2
set xlabel 'chunk size written by the sender (KiB)'
set key bottom right
set grid
set ylabel 'end-to-end MB/s'
set yrange [0:*]
plot '{d.name}' using 1:2 with linespoints lw 2 title 'splice (default)', '' using 1:3 with linespoints lw 2 title 'user space'
set ylabel 'copying thread CPU s per GiB'
set key top right
plot '{d.name}' using 1:4 with linespoints lw 2 title 'splice (default)', '' using 1:5 with linespoints lw 2 title 'user space'
unset multiplot
"""
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
        os.unlink(d.name)


if __name__ == "__main__":
    main(*sys.argv[1:3])
