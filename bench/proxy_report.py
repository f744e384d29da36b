#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the JSON files of bench/proxy_bench.py into Markdown tables (medians with the min-max
spread over interleaved repeats, and ratios taken repeat by repeat, so each ratio compares runs made
seconds apart) and, with gnuplot, a chart of the peers part (peers.png in bench/results/).

usage: proxy_report.py RESULTS_DIR [CHART.png]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

LABELS = {}  # proxy key -> label, filled from the rows


def size(n):
    n = int(n)
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def spread(xs, fmt="{:.0f}"):
    """median (min-max) of the values that exist; '-' when none."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = fmt.format(statistics.median(xs))
    return m if len(xs) == 1 or min(xs) == max(xs) else f"{m} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def ratio(xs):
    return spread(xs, "{:.2f}x")


def load(path):
    with open(path) as f:
        doc = json.load(f)
    for r in doc["rows"]:
        if "label" in r:
            LABELS.setdefault(r["proxy"], r["label"])
    return doc["meta"], [r for r in doc["rows"] if "pool" not in r]


def header(meta, title, what):
    print(f"\n## {title}\n")
    print(what + "\n")
    print(f"Run {meta['date']} on {meta['kernel']}, {meta['cpus']} CPUs (load average before: "
          f"{meta['load_before'][0]:.2f}); `{meta['command']}`; medians of {meta['reps']} interleaved repeats "
          f"(each proxy in turn, A B C A B C) with the min-max spread; cgroup {meta['cgroup']}, "
          f"period {meta['period_us'] // 1000} ms; TCP congestion control {meta.get('congestion', '?')}.")
    if meta.get("skipped"):
        print(f"Skipped: {'; '.join(meta['skipped'])}.")
    print()


# ---- derived values of one row ----------------------------------------------------------------

def mbps(r):
    return r["stream"]["mbps"] if r.get("stream", {}).get("received") else None


def per_core_mb(r):
    """MB moved per second of proxy CPU."""
    s = r.get("stream", {})
    return s["received"] / 1e6 / r["proxy_cpu_s"] if s.get("received") and r.get("proxy_cpu_s") else None


def gib_cpu(r):
    s = r.get("stream", {})
    return r["proxy_cpu_s"] / (s["received"] / 2**30) if s.get("received") and r.get("proxy_cpu_s") else None


def conns(r):
    return r["conns"]["per_s"] if "conns" in r else None


def per_core_conns(r):
    c = r.get("conns")
    return (c["done"] + c["late"]) / r["proxy_cpu_s"] if c and r.get("proxy_cpu_s") else None


def cores(r):
    return r["proxy_cpu_s"] / r["wall_s"] if r.get("wall_s") and r.get("proxy_cpu_s") else None


def gen_cores(r):
    return (r["cpu_s"] + r["server_cpu_s"]) / r["wall_s"] if r.get("wall_s") else None


def throttled(r):
    return r["nr_throttled"] / r["nr_periods"] if r.get("nr_periods") else None


class Rows:
    """Rows picked by field values; values(fn) gives fn of each, pairs give per-repeat ratios."""

    def __init__(self, rows):
        self.rows = rows

    def where(self, **kv):
        return Rows([r for r in self.rows if all(self._get(r, k) == v for k, v in kv.items())])

    @staticmethod
    def _get(r, k):
        if k == "kind":
            return "stream" if "stream" in r else "conns" if "conns" in r else "rr" if "rr" in r else None
        if k == "write":
            return r.get("stream", {}).get("write")
        return r.get(k)

    def values(self, fn):
        return [fn(r) for r in self.rows]

    def by_rep(self, fn):
        return {r["rep"]: fn(r) for r in self.rows}

    def proxies(self):
        return list(dict.fromkeys(r["proxy"] for r in self.rows))


def pair_ratio(rows, a, b, fn, **kv):
    xa, xb = rows.where(proxy=a, **kv).by_rep(fn), rows.where(proxy=b, **kv).by_rep(fn)
    return ratio([xa[k] / xb[k] for k in xa if k in xb and xa[k] and xb[k]])


PAIRS = [("epoll", "haproxy-splice"), ("epoll", "go"), ("tcp", "haproxy-splice"), ("asio", "haproxy-splice"),
         ("epoll", "epoll-us"), ("tcp", "tcp-us"), ("asio", "asio-us"), ("haproxy-splice", "haproxy"),
         ("go", "haproxy-splice"), ("epoll", "epoll-base"), ("tcp", "tcp-base"), ("asio", "asio-base")]


def pairs_present(rows):
    have = set(rows.proxies())
    return [(a, b) for a, b in PAIRS if a in have and b in have]


def table(head, lines):
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for line in lines:
        print("| " + " | ".join(line) + " |")
    print()


# ---- parts -------------------------------------------------------------------------------------

def peers(meta, rows, chart):
    rows = Rows(rows)
    cap = meta["cap"]
    capped, free = rows.where(cap=cap), rows.where(cap=None)
    sizes = meta["sizes"]
    header(meta, "Proxies under a CPU quota: bulk streams and short connections",
           f"Each proxy in its own cgroup capped at {cap:.0%} of one CPU; `loadgen` sends {meta['streams']} "
           f"parallel streams of fixed-size writes through it to a sink for {meta['seconds']} s a run, and opens "
           f"`{meta['short']}` (connections at a time, bytes each: connect, send, half-close, read the sink's "
           f"8-byte count, close). *Per proxy core* is what the proxy moved per second of its own CPU time "
           f"(exact, from cpuacct), so it holds whether or not the proxy used its whole quota. loadgen's senders "
           f"leave Nagle on; HAProxy and Go set TCP_NODELAY." + haproxy_threads(rows))
    ps = [p for p in capped.proxies()]
    print(f"**MB/s per proxy core** by write size (capped at {cap:.0%}), and 16 KiB connections/s per proxy core:\n")
    table(["proxy"] + [size(s) for s in sizes] + ["conns/s per core"],
          [[LABELS[p]] + [spread(capped.where(proxy=p, write=s).values(per_core_mb)) for s in sizes] +
           [spread(capped.where(proxy=p, kind="conns").values(per_core_conns))] for p in ps])
    print(f"**Measured under the {cap:.0%} cap**: MB/s by write size, connections/s, and the share of CFS periods "
          f"in which the proxy was throttled (near 100%: the quota was the bound):\n")
    table(["proxy"] + [size(s) for s in sizes] + ["conns/s", "throttled"],
          [[LABELS[p]] + [spread(capped.where(proxy=p, write=s).values(mbps)) for s in sizes] +
           [spread(capped.where(proxy=p, kind="conns").values(conns)),
            spread(capped.where(proxy=p).values(throttled), "{:.0%}")] for p in ps])
    print(f"**Proxy CPU seconds per GiB** moved (capped at {cap:.0%}):\n")
    table(["proxy"] + [size(s) for s in sizes],
          [[LABELS[p]] + [spread(capped.where(proxy=p, write=s).values(gib_cpu), "{:.3f}") for s in sizes]
           for p in ps])
    print("**Uncapped, end to end** (64 KiB writes; the proxy, the load generator and the sink share the "
          "machine's CPUs, so these rows measure the whole machine; *generator cores* is loadgen's client "
          "and server CPU time over the run):\n")
    table(["proxy", "MB/s", "proxy cores", "generator cores", "CPU s/GiB", "conns/s", "proxy cores",
           "generator cores"],
          [[LABELS[p]] + [spread(free.where(proxy=p, write=65536).values(f), fmt) for f, fmt in
                          ((mbps, "{:.0f}"), (cores, "{:.2f}"), (gen_cores, "{:.2f}"), (gib_cpu, "{:.3f}"))] +
           [spread(free.where(proxy=p, kind="conns").values(f), fmt) for f, fmt in
            ((conns, "{:.0f}"), (cores, "{:.2f}"), (gen_cores, "{:.2f}"))] for p in free.proxies()])
    print("**Ratios**, taken repeat by repeat (median and min-max): per proxy core under the cap, and end to end "
          "uncapped:\n")
    table(["ratio"] + [f"{size(s)} per core" for s in sizes] + ["conns per core", "uncapped MB/s",
                                                                "uncapped conns/s"],
          [[f"{LABELS[a]} / {LABELS[b]}"] +
           [pair_ratio(capped, a, b, per_core_mb, write=s) for s in sizes] +
           [pair_ratio(capped, a, b, per_core_conns, kind="conns"),
            pair_ratio(free, a, b, mbps, write=65536), pair_ratio(free, a, b, conns, kind="conns")]
           for a, b in pairs_present(capped)])
    own = [(a, b) for a, b in pairs_present(free) if b == a + "-us"]
    if own:
        print("**Spliced against the same program's `--userspace`, uncapped, end to end**, by write size (MB/s, "
              "repeat by repeat; the machine's two CPUs are shared by the proxy, the load generator and the sink):\n")
        table(["ratio"] + [size(s) for s in sizes],
              [[f"{LABELS[a]} / {LABELS[b]}"] + [pair_ratio(free, a, b, mbps, write=s) for s in sizes]
               for a, b in own])
    checks = [r for r in rows.rows if "iperf3" in r]
    if checks:
        ip = lambda r: r["iperf3"]["received"] / 1e6 / r["proxy_cpu_s"] if r.get("proxy_cpu_s") else None
        print(f"**Cross-check of the load generator**: iperf3 `-P {meta['streams']} -l 64K -t 1` through each proxy "
              f"capped at {cap:.0%} (first repeat only), against loadgen's 64 KiB row of the same repeat, in MB/s "
              "per proxy core:\n")
        lines = []
        for r in checks:
            lg = capped.where(proxy=r["proxy"], write=65536, rep=0).values(per_core_mb)
            lines.append([LABELS[r["proxy"]], spread(lg), spread([ip(r)]),
                          ratio([ip(r) / lg[0]] if lg and lg[0] and ip(r) else [])])
        table(["proxy", "loadgen", "iperf3", "iperf3 / loadgen"], lines)
    failed = sum(1 for r in rows.rows if r.get("rc") or r.get("proxy_errors"))
    if failed:
        print(f"{failed} runs had a failed or short connection, or a proxy-logged error (see the JSON).\n")
    if chart and shutil.which("gnuplot"):
        with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as d:
            for s in sizes:
                vals = [capped.where(proxy=p, write=s).values(per_core_mb) for p in ps]
                d.write(f"{s >> 10} " + " ".join(
                    f"{statistics.median([v for v in x if v]):.0f}" if any(x) else "NaN" for x in vals) + "\n")
        plots = ", ".join(f"'{d.name}' using 1:{i + 2} with linespoints lw 2 title '{LABELS[p]}'"
                          for i, p in enumerate(ps))
        subprocess.run(["gnuplot"], text=True, check=True, input=f"""
set terminal pngcairo size 900,500 font ',10' noenhanced
set output '{chart}'
set title 'Proxies capped at {cap:.0%} of a CPU: MB/s per proxy core (median of {meta['reps']} interleaved repeats)'
set logscale x 2
set xtics ({', '.join(f'"{size(s)}" {s >> 10}' for s in sizes)})
set xlabel 'write size of the sender'
set ylabel 'MB moved per second of proxy CPU'
set key outside right
set grid
set yrange [0:*]
plot {plots}
""")
        os.unlink(d.name)


def haproxy_threads(rows):
    n = sorted({r["proxy_threads"] for r in rows.rows if r.get("program") == "haproxy" and "proxy_threads" in r})
    return f" HAProxy ran {'/'.join(map(str, n))} threads (its default: one per CPU)." if n else ""


def reqresp(meta, rows):
    if not rows:
        print(f"\n## Request/response through nginx\n\nNot run: {meta.get('missing')}.\n")
        return
    rows = Rows(rows)
    cap = meta["cap"]
    capped, free = rows.where(cap=cap), rows.where(cap=None)
    cases = list(dict.fromkeys((r["file"], r["conns"]) for r in rows.rows))
    name = lambda c: f"{'1 KiB' if c[0] == '1k' else '1 MiB'}, {c[1]} conns"
    header(meta, "Request/response: wrk through each proxy to nginx",
           f"`{meta['wrk']}` for {meta['seconds']} s a run through each proxy to nginx (one worker, sendfile, "
           f"keep-alive, no access log) serving a 1 KiB and a 1 MiB file. Capped: the proxy at {cap:.0%} of one "
           "CPU; per proxy core is requests per second of the proxy's CPU time.")
    per_core = lambda r: r["requests"] / r["proxy_cpu_s"] if r.get("requests") and r.get("proxy_cpu_s") else None
    ms = lambda r: r["p99_us"] / 1e3 if r.get("p99_us") else None
    print(f"**Requests/s per proxy core** (capped at {cap:.0%}):\n")
    table(["proxy"] + [name(c) for c in cases],
          [[LABELS[p]] + [spread(capped.where(proxy=p, file=f, conns=n).values(per_core)) for f, n in cases]
           for p in capped.proxies()])
    print(f"**Requests/s and p99 latency in ms** under the {cap:.0%} cap:\n")
    table(["proxy"] + [name(c) for c in cases],
          [[LABELS[p]] + [spread(capped.where(proxy=p, file=f, conns=n).values(lambda r: r["rps"])) + ", p99 " +
                          spread(capped.where(proxy=p, file=f, conns=n).values(ms), "{:.2f}") for f, n in cases]
           for p in capped.proxies()])
    print("**Uncapped** (wrk, nginx and the proxy share the CPUs): requests/s and p99 latency in ms:\n")
    table(["proxy"] + [name(c) for c in cases],
          [[LABELS[p]] + [spread(free.where(proxy=p, file=f, conns=n).values(lambda r: r["rps"])) + ", p99 " +
                          spread(free.where(proxy=p, file=f, conns=n).values(ms), "{:.2f}") for f, n in cases]
           for p in free.proxies()])
    print(f"**Ratios of requests per proxy core** under the {cap:.0%} cap, repeat by repeat:\n")
    table(["ratio"] + [name(c) for c in cases],
          [[f"{LABELS[a]} / {LABELS[b]}"] + [pair_ratio(capped, a, b, per_core, file=f, conns=n) for f, n in cases]
           for a, b in pairs_present(capped)])
    print("**Ratios of requests/s uncapped**, repeat by repeat:\n")
    table(["ratio"] + [name(c) for c in cases],
          [[f"{LABELS[a]} / {LABELS[b]}"] + [pair_ratio(free, a, b, lambda r: r["rps"], file=f, conns=n)
                                             for f, n in cases] for a, b in pairs_present(free)])
    bad = sum(1 for r in rows.rows if r.get("socket_errors") or r.get("bad_status") or r.get("rc"))
    if bad:
        print(f"{bad} wrk runs reported socket errors or non-2xx answers (see the JSON).\n")


def latency(meta, rows):
    rows = Rows(rows)
    header(meta, "Latency under bulk load",
           f"`{meta['rr']}` (round trips through the proxy to an echo server) for "
           f"{meta['seconds']} s, alone and while `{meta['bulk']}` (2 connections of 1 MiB writes) runs through "
           "the same proxy process. Proxies uncapped on all CPUs, HAProxy with its default thread count." +
           haproxy_threads(rows))
    us = lambda k: (lambda r: r["rr"][k] if r.get("rr", {}).get("requests") else None)
    table(["proxy", "alone p50 us", "alone p90 us", "alone p99 us", "alone p99.9 us", "alone req/s", "bulk p50 us",
           "bulk p99 us", "bulk p99.9 us", "bulk req/s", "bulk MB/s"],
          [[LABELS[p]] + [spread(rows.where(proxy=p, bulk=False).values(us(k))) for k in ("p50_us", "p90_us", "p99_us",
                                                                                         "p999_us", "per_s")] +
           [spread(rows.where(proxy=p, bulk=True).values(us(k))) for k in ("p50_us", "p99_us", "p999_us", "per_s")] +
           [spread(rows.where(proxy=p, bulk=True).values(mbps))] for p in rows.proxies()])
    if {"epoll", "haproxy-splice"} <= set(rows.proxies()):
        bulk = rows.where(bulk=True)
        alone = rows.where(bulk=False)
        p99 = pair_ratio(bulk, "epoll", "haproxy-splice", us("p99_us"))
        p999 = pair_ratio(bulk, "epoll", "haproxy-splice", us("p999_us"))
        mb = pair_ratio(bulk, "epoll", "haproxy-splice", mbps)
        print(f"epoll_proxy / HAProxy splice, repeat by repeat (targets <= 1.0x): alone p99 "
              f"**{pair_ratio(alone, 'epoll', 'haproxy-splice', us('p99_us'))}**, p99.9 "
              f"**{pair_ratio(alone, 'epoll', 'haproxy-splice', us('p999_us'))}**; under bulk p99 **{p99}**, "
              f"p99.9 **{p999}**, bulk MB/s **{mb}** (target >= 0.9x).\n")


def small(meta, rows):
    rows = Rows(rows)
    cap = meta["cap"]
    free, capped = rows.where(cap=None), rows.where(cap=cap)
    header(meta, "Small request/response",
           f"`{meta['rr']}`: 50 connections, each sending a 64-byte request through the proxy to an echo "
           f"server and waiting for the 64-byte reply, no pipelining, {meta['seconds']} s a run. Every peer with "
           "its default thread count (the threads column counts its OS threads). Per proxy core: requests per "
           f"second of the proxy's CPU time, uncapped. Capped: the proxy at {cap:.0%} of one CPU.")
    rr = lambda k: (lambda r: r["rr"][k] if r.get("rr", {}).get("requests") else None)
    per_core = lambda r: r["rr"]["requests"] / r["proxy_cpu_s"] if r.get("rr", {}).get("requests") and \
        r.get("proxy_cpu_s") else None
    nthreads = lambda p: "/".join(map(str, sorted({r.get("proxy_threads") for r in rows.where(proxy=p).rows
                                                    if r.get("proxy_threads")}))) or "-"
    table(["proxy", "threads", "req/s", "per proxy core", "p50 us", "p90 us", "p99 us", "p99.9 us", "capped req/s"],
          [[LABELS[p], nthreads(p)] + [spread(free.where(proxy=p).values(rr("per_s"))),
                                        spread(free.where(proxy=p).values(per_core))] +
           [spread(free.where(proxy=p).values(rr(k))) for k in ("p50_us", "p90_us", "p99_us", "p999_us")] +
           [spread(capped.where(proxy=p).values(rr("per_s")))] for p in rows.proxies()])
    pairs = [(a, b) for a, b in pairs_present(rows) if b in ("haproxy-splice", "go")]
    table(["ratio, repeat by repeat", "req/s", "per proxy core", "p99", "capped req/s"],
          [[f"{LABELS[a]} / {LABELS[b]}", pair_ratio(free, a, b, rr("per_s")), pair_ratio(free, a, b, per_core),
            pair_ratio(free, a, b, rr("p99_us")), pair_ratio(capped, a, b, rr("per_s"))] for a, b in pairs])


def threads(meta, rows):
    if not rows:
        print(f"\n## One loop per core: epoll_proxy --threads\n\nNot run: {meta.get('missing')}.\n")
        return
    rows = Rows(rows)
    header(meta, "One loop per core: epoll_proxy --threads 1 and 2",
           "8 streams of 64 KiB writes, and 16 KiB connections. *per-thread 20%*: every thread of the proxy "
           "in a cgroup of its own capped at 20% of a CPU, so each loop gets one slow core and the load "
           "generator keeps most of the machine: two loops that scale move twice as much. *process 40%*: "
           "the whole process capped at 40%: equal rows mean the second loop costs nothing. *uncapped*: the "
           "loops and the generator share both CPUs.")
    lines = []
    for cfg in meta["configs"]:
        for n in (1, 2):
            sel = rows.where(config=cfg, threads=n)
            st, cn = sel.where(kind="stream"), sel.where(kind="conns")
            split = [r["thread_cpu_s"] for r in st.rows]
            busiest = [x[0] / sum(x) if sum(x) else None for x in split]
            lines.append([cfg, str(n), spread(st.values(mbps)), spread(st.values(cores), "{:.2f}"),
                          spread(busiest, "{:.0%}"), spread(cn.values(conns)), spread(cn.values(cores), "{:.2f}"),
                          ratio([a / b for a, b in zip(st.values(mbps), rows.where(config=cfg, threads=1,
                                                                                 kind="stream").values(mbps))
                                 if a and b]) if n == 2 else "",
                          ratio([a / b for a, b in zip(cn.values(conns), rows.where(config=cfg, threads=1,
                                                                                  kind="conns").values(conns))
                                 if a and b]) if n == 2 else ""])
    table(["cap", "threads", "MB/s", "proxy cores", "busiest thread's share", "conns/s", "proxy cores",
           "MB/s 2 / 1", "conns/s 2 / 1"], lines)


def unprivileged(meta, rows):
    if not rows:
        print(f"\n## The unprivileged pipe budget\n\nNot run: {meta.get('missing')}.\n")
        return
    rows = Rows(rows)
    header(meta, "The unprivileged pipe budget: proxies as user nobody",
           f"Each proxy run as root, as nobody (`setpriv --reuid=nobody --regid=nogroup --clear-groups`), and as "
           f"nobody with the budget already spent by another process of the user (`loadgen spend-pipes`: "
           f"{spent_note(rows)}), capped at {meta['cap']:.0%} of a CPU, with 16, 64 and 256 parallel streams "
           f"of 64 KiB writes. Once a user holds fs.pipe-user-pages-soft = {meta['pipe_user_pages_soft']} pages "
           "of pipes, its new pipes get 2 pages and F_SETPIPE_SZ fails; root is exempt.")
    lines, held = [], []
    for p in rows.proxies():
        for n in meta["counts"]:
            sel = {u: rows.where(proxy=p, streams=n, user=u) for u in ("root", "nobody", "spent")}
            rel = lambda u, fn: ratio([a / sel["root"].by_rep(fn)[k] for k, a in sel[u].by_rep(fn).items()
                                       if a and sel["root"].by_rep(fn).get(k)])
            lines.append([LABELS[p], str(n)] + [spread(sel[u].values(mbps)) for u in ("root", "nobody", "spent")] +
                         [rel("nobody", mbps), rel("spent", mbps)] +
                         [spread(sel[u].values(gib_cpu), "{:.3f}") for u in ("root", "nobody", "spent")] +
                         [rel("spent", gib_cpu)])
            held.append([LABELS[p], str(n)] + [pipe_sizes(sel[u].rows[0]["pipes"]) if sel[u].rows else "-"
                                               for u in ("root", "nobody", "spent")])
    table(["proxy", "streams", "root MB/s", "nobody MB/s", "spent MB/s", "nobody / root", "spent / root",
           "root CPU s/GiB", "nobody CPU s/GiB", "spent CPU s/GiB", "spent / root CPU"], lines)
    print("**Pipes the proxy held** at most (sampled every 50 ms with F_GETPIPE_SZ through /proc/PID/fd), by "
          "size, first repeat:\n")
    table(["proxy", "streams", "root", "nobody", "nobody, budget spent"], held)


def spent_note(rows):
    held = sorted({r["spent_by_other"] for r in rows.rows if r.get("spent_by_other")})
    return "; ".join(held) or "no run"


def pipe_sizes(hist):
    """{"1048576": 10, "8192": 3} -> "10 x 1 MiB, 3 x 8 KiB" """
    return ", ".join(f"{n} x {size(k)}" for k, n in hist.items()) or "none"


def rate(meta, rows):
    rows = Rows(rows)
    header(meta, "Rate limits: --rate and --rate-total",
           "Senders push 64 KiB writes as fast as the proxy takes them, to a sink that counts what each "
           f"connection delivers; the rate is the sink's, over {meta['window']} (the first second holds the "
           "burst), against the limit (--rate: per connection and direction, so the total is the limit times "
           "the connections; --rate-total: all connections together). Targets: within 5% of the limit, the "
           "proxy under 15% of one CPU while it limits, and spliced. *fair*: the slowest and the fastest "
           "connection against the fair share (total / connections).")
    acc = rows.where(rate_kind="accuracy")
    lines = []
    for p in acc.proxies():
        for c in meta["cases"]:
            sel = acc.where(proxy=p, limit=c[0], conns=c[1], flag=c[2])
            if not sel.rows:
                continue
            pool = [r.get("pool_bytes") for r in sel.rows if r.get("pool_bytes")]
            share = [s / (s + u) if s + u else None for s, u in pool]
            lines.append([LABELS[p], f"--{c[2]} {c[0] / 1e6:g} MB/s", str(c[1]),
                          spread(sel.values(lambda r: r.get("total_limit", 0) / 1e6), "{:g}"),
                          spread(sel.values(lambda r: r.get("rate", 0) / 1e6), "{:.3f}"),
                          spread(sel.values(lambda r: r.get("accuracy")), "{:.1%}"),
                          spread(sel.values(lambda r: r.get("cpu_share")), "{:.1%}"),
                          spread(sel.values(lambda r: r.get("per_conn_min", 0) / r["fair_share"]
                                            if r.get("fair_share") else None), "{:.2f}") + " / " +
                          spread(sel.values(lambda r: r.get("per_conn_max", 0) / r["fair_share"]
                                            if r.get("fair_share") else None), "{:.2f}"),
                          spread(sel.values(lambda r: r.get("spliced_conns")), "{:.0f}") + f" / {c[1]}",
                          spread(share, "{:.1%}")])
    table(["proxy", "limit", "conns", "limit MB/s", "delivered MB/s", "of the limit", "proxy CPU",
           "fair: slowest / fastest", "conns spliced", "bytes spliced"], lines)
    cost = rows.where(rate_kind="cost")
    if cost.rows:
        print("**Cost per GiB** (loadgen streams of 64 KiB writes, proxy CPU seconds per GiB delivered):\n")
        lines = []
        for p in cost.proxies():
            for w in dict.fromkeys(r["workload"] for r in cost.rows):
                for f in dict.fromkeys(r["flags"] for r in cost.where(proxy=p, workload=w).rows):
                    sel = cost.where(proxy=p, workload=w, flags=f)
                    lines.append([LABELS[p], w, f, spread(sel.values(mbps)), spread(sel.values(gib_cpu), "{:.3f}")])
        table(["proxy", "workload", "limit", "MB/s", "CPU s/GiB"], lines)
    micro = [r for r in rows.rows if r.get("rate_kind") == "micro"]
    if micro:
        print("**The shared bucket** (`bench/rate_bench`, Google Benchmark, medians of 3): one take and give "
              "back on a connection's bucket that draws on an outer one, the outer shared by every thread; "
              "own: each thread's outer bucket is its own (no contention).\n")
        table(["benchmark", "ns per take"], [[r["name"], f"{r['ns']:.1f}"] for r in micro])


def netns(meta, rows):
    """Rows from three topologies, each row labelled: veth (client, proxy, server in namespaces of
    their own), the same with the proxy -> server link shaped by tbf, and loopback (reference)."""
    if not rows:
        print(f"\n## Across network namespaces: veth links\n\nNot run: {meta.get('missing')}.\n")
        return
    rows = Rows(rows)
    t, cap, sizes = meta["topology"], meta["cap"], meta["sizes"]
    veth, shaped, lo = meta["topologies"]
    header(meta, "Across network namespaces: veth links",
           f"The load generator's client, the proxy and the load generator's server each in a network namespace "
           f"of its own (`ip netns`), joined by two veth pairs with MTU {t['mtu']} ({t['client']} -> {t['proxy']}, "
           f"{t['proxy_upstream']} -> {t['server']}), so bytes cross links with their own queues, GRO and softirq "
           f"work instead of loopback (MTU 64 KiB). The *topology* column says where each row ran: *{veth}*; "
           f"*{shaped}*: {t['shaped_link']}; *{lo}*: the same proxy on 127.0.0.1 in the same repeat, the "
           f"reference. {meta['streams']} streams of fixed-size writes and `{meta['short']}` as in the peers "
           f"part; capped rows at {cap:.0%} of one CPU. The *no proxy* row is routed through the proxy "
           f"namespace by the kernel (the generator's ceiling on the same links). {meta.get('placement', '')}; "
           f"congestion control in the namespaces: {', '.join(f'{k} {v}' for k, v in t['congestion'].items())}."
           + haproxy_threads(rows))
    capped = rows.where(cap=cap)
    ps = capped.proxies()
    print(f"**MB/s per proxy core** by write size and 16 KiB connections/s per proxy core, capped at {cap:.0%}:\n")
    table(["proxy", "topology"] + [size(s) for s in sizes] + ["conns/s per core", "throttled"],
          [[LABELS[p], topo] + [spread(capped.where(proxy=p, topology=topo, write=s).values(per_core_mb))
                                for s in sizes] +
           [spread(capped.where(proxy=p, topology=topo, kind="conns").values(per_core_conns)),
            spread(capped.where(proxy=p, topology=topo).values(throttled), "{:.0%}")]
           for p in ps for topo in (veth, lo)])
    free = rows.where(cap=None)
    print("**Uncapped, end to end** (64 KiB writes; the proxy, the generator and the sink share the CPUs; "
          f"*{shaped}* rows are bound by the link, so their CPU per GiB is the figure to read):\n")
    table(["proxy", "topology", "MB/s", "proxy cores", "generator cores", "CPU s/GiB", "conns/s", "proxy cores"],
          [[LABELS[p], topo] + [spread(free.where(proxy=p, topology=topo, write=65536).values(f), fmt) for f, fmt in
                                ((mbps, "{:.0f}"), (cores, "{:.2f}"), (gen_cores, "{:.2f}"), (gib_cpu, "{:.3f}"))] +
           ([spread(free.where(proxy=p, topology=topo, kind="conns").values(f), fmt) for f, fmt in
             ((conns, "{:.0f}"), (cores, "{:.2f}"))] if topo == veth else ["-", "-"])
           for p in free.proxies() for topo in (veth, shaped)])
    pairs = [(a, b) for a, b in pairs_present(rows) if b in ("haproxy-splice", "haproxy") or b == a + "-us"]
    cv, cl, fv, fs = (capped.where(topology=veth), capped.where(topology=lo), free.where(topology=veth),
                      free.where(topology=shaped))
    print(f"**Ratios** against HAProxy splice and against the same program's user-space path, repeat by repeat "
          f"(median and min-max): per proxy core capped at {cap:.0%} on the veths, uncapped on the veths, CPU per "
          f"GiB over the shaped link (below 1.00x: cheaper), and per proxy core on loopback in the same repeats:\n")
    table(["ratio"] + [f"{veth} {size(s)} per core" for s in sizes] +
          [f"{veth} conns per core", f"{veth} uncapped MB/s", f"{veth} uncapped conns/s", f"{shaped} CPU s/GiB",
           f"{lo} 64 KiB per core", f"{lo} conns per core"],
          [[f"{LABELS[a]} / {LABELS[b]}"] + [pair_ratio(cv, a, b, per_core_mb, write=s) for s in sizes] +
           [pair_ratio(cv, a, b, per_core_conns, kind="conns"), pair_ratio(fv, a, b, mbps, write=65536),
            pair_ratio(fv, a, b, conns, kind="conns"), pair_ratio(fs, a, b, gib_cpu, write=65536),
            pair_ratio(cl, a, b, per_core_mb, write=65536), pair_ratio(cl, a, b, per_core_conns, kind="conns")]
           for a, b in pairs])
    print(f"**{veth} / {lo}** for each proxy, per proxy core capped at {cap:.0%}, repeat by repeat (what the links "
          "cost or save the proxy):\n")
    across = lambda p, fn, **kv: ratio([a / b for k, a in cv.where(proxy=p, **kv).by_rep(fn).items()
                                        for b in [cl.where(proxy=p, **kv).by_rep(fn).get(k)] if a and b])
    table(["proxy", "64 KiB per core", "conns per core"],
          [[LABELS[p], across(p, per_core_mb, write=65536), across(p, per_core_conns, kind="conns")] for p in ps])
    own = [(a, b) for a, b in pairs if b == a + "-us"]
    if own and len(sizes) > 1:
        print(f"**Spliced against the same program's `--userspace`, uncapped on the veths**, MB/s by write size, "
              "repeat by repeat:\n")
        table(["ratio"] + [size(s) for s in sizes],
              [[f"{LABELS[a]} / {LABELS[b]}"] + [pair_ratio(fv, a, b, mbps, write=s) for s in sizes] for a, b in own])
    failed = sum(1 for r in rows.rows if r.get("rc") or r.get("proxy_errors"))
    if failed:
        print(f"{failed} runs had a failed or short connection, or a proxy-logged error (see the JSON).\n")


PARTS = ("peers", "reqresp", "latency", "small", "threads", "unprivileged", "rate", "netns")


def section(part, path, chart=None):
    """Prints the section of one part from its JSON file; the peers part draws chart (with gnuplot)."""
    meta, rows = load(path)
    if part == "peers":
        peers(meta, rows, chart)
    else:
        globals()[part](meta, rows)


def main():
    d = sys.argv[1]
    chart = sys.argv[2] if len(sys.argv) > 2 else None
    for part in PARTS:
        path = os.path.join(d, f"{part}.json")
        if os.path.exists(path):
            section(part, path, chart)


if __name__ == "__main__":
    main()
