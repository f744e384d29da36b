#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs real clients through real proxies on 127.0.0.1, each proxy under a CPU quota (a cgroup), and
writes one JSON file per part for bench/proxy_report.py. Every peer is started and stopped here;
cgroups are removed on exit.

usage: proxy_bench.py [--build DIR] [--out DIR] [--quick] PART...   (default out: bench/out, which git ignores)

Parts (see bench/README.md for what each measures):
  peers         bulk streams (1 KiB .. 1 MiB writes) and 16 KiB connections/s, capped and uncapped
  reqresp       wrk through each proxy to nginx (1 KiB and 1 MiB files, 32 connections)
  latency       1 KiB round trips on 32 connections, alone and beside 2 bulk streams of 1 MiB writes
  small         64 B request, 64 B reply, 50 connections, no pipelining: requests/s, per proxy core,
                latency distribution; uncapped and capped
  threads       epoll_proxy --threads 1 against 2
  unprivileged  the proxies as user nobody (with and without its pipe budget spent) against root
  rate          --rate and --rate-total through epoll_proxy and tcp_proxy: delivered rate, CPU while
                limiting, spliced share, CPU per GiB with and without a limit; rate_bench (the shared
                bucket from 1 and 2 threads)
  netns         client, proxy and server in network namespaces of their own joined by veth pairs
                (bench/netns.py): the peers workloads, a 1 Gbit/s tbf link, loopback reference rows

The proxies: epoll_proxy and tcp_proxy (and asio_proxy when built), spliced and --userspace; HAProxy
in mode tcp with and without splice; go_proxy (bench/go_proxy.go, built here). One that is missing
is skipped and named. REPS and SECS in the environment override each part's repeats and seconds.
"""
import argparse
import atexit
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PERIOD_US = 10_000  # a short CFS period keeps a capped run of under a second smooth
SIZES = [1024, 4096, 16384, 65536, 1 << 20]
SHORT = "conns=64,16384"  # 64 connections at a time, 16 KiB each: enough to keep a throttled proxy busy
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_procs = []    # every process started, stopped on exit
_groups = []   # every cgroup made, removed on exit
work = tempfile.mkdtemp(prefix="splice-bench-")
os.chmod(work, 0o755)  # proxies run as nobody read their configuration here


def say(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- processes -------------------------------------------------------------------------------

def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def cleanup():
    for p in reversed(_procs):
        stop(p)
    for g in reversed(_groups):
        g.remove()
    shutil.rmtree(work, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True when something listens on 127.0.0.1:port. Asks ss (a filtered netlink dump) rather than
    reading /proc/net/tcp, which costs seconds once short-connection runs have left tens of
    thousands of sockets in TIME_WAIT; without ss, tries a connection."""
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        return bool(out.strip())
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def wait_for(cond, what, timeout=10, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: exited with {proc.returncode}")
        time.sleep(0.02)
    raise RuntimeError(f"{what}: timed out")


def port_from_log(path, proc, what):
    found = []

    def seen():
        with open(path) as f:
            m = re.search(r"^listening on .*:(\d+)$", f.read(), re.M)
        if m:
            found.append(int(m.group(1)))
        return bool(found)
    wait_for(seen, what, proc=proc)
    return found[0]


def ticks_cpu(pid):
    """utime + stime of the whole process (every thread, live or ended), in seconds; 10 ms steps."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """{tid: CPU seconds} of the live threads, from schedstat (nanoseconds)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[0]) / 1e9
        except OSError:
            pass
    return out


def pipes_of(pid):
    """Sizes of the pipes a process holds (each pipe once), read with F_GETPIPE_SZ through /proc."""
    import fcntl
    sizes = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not link.startswith("pipe:") or link in sizes:
                continue
            mine = os.open(f"/proc/{pid}/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
            try:
                sizes[link] = fcntl.fcntl(mine, 1032)  # F_GETPIPE_SZ
            finally:
                os.close(mine)
        except OSError:
            pass
    return sorted(sizes.values())


# ---- cgroups ---------------------------------------------------------------------------------

class Cgroups:
    """Finds a CPU controller: cgroup v1 (cpu.cfs_quota_us, with cpuacct for exact usage) or v2
    (cpu.max). `why` says what is missing when neither can be used."""

    def __init__(self):
        self.kind, self.why = None, ""
        v1, acct, v2 = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup"
        if os.access(f"{v1}/cpu.cfs_quota_us", os.W_OK) and os.access(v1, os.W_OK):
            self.kind, self.cpu = "v1", v1
            self.acct = acct if os.path.exists(f"{acct}/cpuacct.usage") else None
        elif os.path.exists(f"{v2}/cgroup.controllers") and "cpu" in open(f"{v2}/cgroup.controllers").read().split():
            try:
                with open(f"{v2}/cgroup.subtree_control", "w") as f:
                    f.write("+cpu")
                self.kind, self.cpu, self.acct = "v2", v2, None
            except OSError as e:
                self.why = f"cgroup v2 cpu controller not delegated ({e})"
        else:
            self.why = "no writable cgroup cpu controller (needs root and cgroup v1 cpu or v2 cpu.max)"

    def make(self, name):
        if not self.kind:
            return None
        g = Group(self, name)
        _groups.append(g)
        return g


class Group:
    """One cgroup holding one proxy; children (v1 only) cap single threads."""

    def __init__(self, cg, name, parent=None):
        self.cg, self.kind = cg, cg.kind
        self.dirs = [os.path.join(parent.dirs[0] if parent else cg.cpu, name)]
        if not parent and cg.acct and os.path.realpath(cg.acct) != os.path.realpath(cg.cpu):
            self.dirs.append(os.path.join(cg.acct, name))
        for d in self.dirs:
            os.makedirs(d, exist_ok=True)
        self.children = []
        if self.kind == "v1":
            self._write("cpu.cfs_period_us", PERIOD_US)

    def _write(self, file, value, d=None):
        with open(os.path.join(d or self.dirs[0], file), "w") as f:
            f.write(str(value))

    def join(self):
        """Moves the calling process into the group (call it in the child, before exec)."""
        for d in self.dirs:
            self._write("cgroup.procs", os.getpid(), d)

    def cap(self, fraction):
        """Caps the group at `fraction` of one CPU; None removes the cap."""
        quota = -1 if fraction is None else int(PERIOD_US * fraction)
        if self.kind == "v1":
            self._write("cpu.cfs_quota_us", quota)
        else:
            self._write("cpu.max", f"{'max' if quota < 0 else quota} {PERIOD_US}")

    def per_thread(self, tids, fraction):
        """v1 only: moves each thread into a child group of its own capped at `fraction`."""
        while len(self.children) < len(tids):
            c = Group(self.cg, f"t{len(self.children)}", parent=self)
            self.children.append(c)
        for c, tid in zip(self.children, tids):
            c.cap(fraction)
            c._write("tasks", tid)

    def gather(self, tids):
        """Moves threads back from the child groups into this one."""
        for tid in tids:
            try:
                self._write("tasks", tid)
            except OSError:
                pass

    def stat(self):
        """The group's cpu.stat (throttling counters), plus usage_s: CPU seconds used by the group,
        exact, when an accounting controller is there."""
        out = {}
        with open(os.path.join(self.dirs[0], "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                out[k] = int(v)
        if self.kind == "v2":
            out["usage_s"] = out.get("usage_usec", 0) / 1e6
            out["throttled_s"] = out.get("throttled_usec", 0) / 1e6
        else:
            out["throttled_s"] = out.get("throttled_time", 0) / 1e9
            if self.cg.acct:
                with open(os.path.join(self.dirs[-1], "cpuacct.usage")) as f:
                    out["usage_s"] = int(f.read()) / 1e9
        return out

    def remove(self):
        """Removes the group; any process or thread still in it goes back to the parent first."""
        for c in self.children:
            c.remove()
        self.children = []
        for d in self.dirs:
            for file in ("cgroup.procs", "tasks"):
                try:
                    for pid in open(os.path.join(d, file)).read().split():
                        with open(os.path.join(os.path.dirname(d), file), "w") as f:
                            f.write(pid)
                except OSError:
                    pass
            try:
                os.rmdir(d)
            except OSError:
                pass


# ---- the proxies -----------------------------------------------------------------------------

class Proxy:
    """A proxy under test: how to start it on 127.0.0.1 in front of an upstream port."""

    def __init__(self, key, label, kind, path=None, flags=(), program=None):
        self.key, self.label, self.kind, self.path, self.flags = key, label, kind, path, list(flags)
        self.program = program or key  # splice/userspace pairs share a program

    def start(self, upstream, group=None, user=None, net=None):
        """Starts the proxy; returns a Running. `user` "nobody" runs it through setpriv. `net` (a
        bench/netns.py Topology) runs it in the proxy namespace, in front of the server namespace's
        address; None: everything on 127.0.0.1."""
        host, up_host = (net.proxy_ip, net.server_ip) if net else ("127.0.0.1", "127.0.0.1")
        if self.kind == "direct":
            return Running(self, None, upstream, None, None, host=up_host)
        log = os.path.join(work, f"{self.key}.log")
        prefix = (net.exec_in("proxy") if net else []) + (NOBODY if user == "nobody" else [])
        port = None
        if self.kind == "haproxy":
            port = free_port()
            cfg = os.path.join(work, f"{self.key}.cfg")
            with open(cfg, "w") as f:
                f.write(haproxy_config(port, upstream, splice="splice" in self.flags, host=host, up_host=up_host))
            os.chmod(cfg, 0o644)
            argv = ["haproxy", "-db", "-f", cfg]
        else:
            argv = [self.path, f"{host}:0", f"{up_host}:{upstream}"] + self.flags
        out = open(log, "w")
        p = subprocess.Popen(prefix + argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             preexec_fn=group.join if group else None)
        out.close()
        _procs.append(p)
        if port is None:
            port = port_from_log(log, p, self.label)
        else:
            wait_for((lambda: net.listening("proxy", port)) if net else (lambda: listening(port)), self.label, proc=p)
        return Running(self, p, port, log, group, host=host)


class Running:
    def __init__(self, proxy, proc, port, log, group, host="127.0.0.1"):
        self.proxy, self.proc, self.port, self.log, self.group = proxy, proc, port, log, group
        self.host = host  # where the client connects
        self.pid = proc.pid if proc else None
        self.log_pos = 0

    def cpu(self):
        """(exact CPU seconds or None, tick-counted CPU seconds) of the proxy so far."""
        if not self.pid:
            return None, 0.0
        exact = self.group.stat().get("usage_s") if self.group else None
        return exact, ticks_cpu(self.pid)

    def new_errors(self):
        """Connection lines the example proxies logged since the last call that did not end ok."""
        if not self.log or self.proxy.kind != "example":
            return 0
        with open(self.log) as f:
            f.seek(self.log_pos)
            text = f.read()
            self.log_pos = f.tell()
        return sum(1 for line in text.splitlines() if line.startswith("conn ") and not line.endswith(", ok"))

    def stop(self):
        """Stops the proxy and removes its cgroup; returns the pipe pool line it printed, if any."""
        if not self.proc:
            return []
        stop(self.proc)
        if self.group:
            self.group.remove()
        with open(self.log) as f:
            return [line for line in f.read().splitlines() if line.startswith("pipes:")]


def haproxy_config(port, upstream, splice, host="127.0.0.1", up_host="127.0.0.1"):
    opts = "    option splice-auto\n    option splice-request\n    option splice-response\n" if splice else ""
    return f"""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
{opts}listen proxy
    bind {host}:{port}
    server upstream {up_host}:{upstream}
"""


def build_go(build, skipped):
    """Builds bench/go_proxy.go into the build directory; offline (GOPROXY=off), caches in a temp dir."""
    if not shutil.which("go"):
        skipped.append("go_proxy (no `go`: install golang-go)")
        return None
    out = os.path.join(build, "bench", "go_proxy")
    env = dict(os.environ, GOCACHE=os.path.join(work, "gocache"), GOPATH=os.path.join(work, "gopath"),
               GOFLAGS="", GOPROXY="off", GO111MODULE="off")
    r = subprocess.run(["go", "build", "-o", out, os.path.join(ROOT, "bench", "go_proxy.go")], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        skipped.append(f"go_proxy (go build failed: {r.stderr.strip()[:200]})")
        return None
    return out


def accepts_threads(path):
    """Whether an example proxy takes --threads N: it starts listening instead of printing usage."""
    log = os.path.join(work, "threads-probe.log")
    with open(log, "w") as out:
        p = subprocess.Popen([path, "127.0.0.1:0", "127.0.0.1:9", "--threads", "2"], stdout=out,
                             stderr=subprocess.STDOUT)
    try:
        port_from_log(log, p, "probe")
        return True
    except RuntimeError:
        return False
    finally:
        stop(p)


def find_proxies(build, skipped):
    """Every proxy this machine can run, in a fixed order; the missing ones go into `skipped`."""
    ps = []
    for prog in ("epoll_proxy", "tcp_proxy", "asio_proxy"):
        path = os.path.join(build, "examples", prog)
        if not os.access(path, os.X_OK):
            skipped.append(f"{prog} (not built: {path} missing)")
            continue
        short = prog.split("_")[0]
        ps.append(Proxy(short, prog, "example", path, program=prog))
        ps.append(Proxy(f"{short}-us", f"{prog} --userspace", "example", path, ["--userspace"], program=prog))
    # BASELINE=DIR: the example proxies of another build (an earlier commit, say) beside these, so
    # that a change is measured against what it replaces in the same run.
    base = os.environ.get("BASELINE")
    for prog in ("epoll_proxy", "tcp_proxy", "asio_proxy") if base else ():
        path = os.path.join(base, "examples", prog)
        if os.access(path, os.X_OK):
            ps.append(Proxy(prog.split("_")[0] + "-base", f"{prog} (baseline)", "example", path, program=prog))
    if shutil.which("haproxy"):
        ps.append(Proxy("haproxy-splice", "HAProxy splice", "haproxy", flags=["splice"], program="haproxy"))
        ps.append(Proxy("haproxy", "HAProxy no splice", "haproxy", program="haproxy"))
    else:
        skipped.append("HAProxy (no `haproxy`: install haproxy)")
    go = build_go(build, skipped)
    if go:
        ps.append(Proxy("go", "Go io.Copy", "go", go, program="go"))
    return ps


# ---- one measurement -------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.loadgen = os.path.join(self.build, "bench", "loadgen")
        self.cg = Cgroups()
        self.skipped = []
        self.proxies = find_proxies(self.build, self.skipped)
        self.server = None
        self.net = None  # a bench/netns.py Topology while the netns part runs: where everything starts
        self.n = 0

    def by_key(self, *keys):
        return [p for k in keys for p in self.proxies if p.key == k]

    def upstream(self):
        """The loadgen server behind the proxies (sink and echo), started once."""
        if not self.server:
            log = os.path.join(work, "server-netns.log" if self.net else "server.log")
            argv = self.net.exec_in("server") + [self.loadgen, "serve", "2", self.net.server_ip] if self.net \
                else [self.loadgen, "serve"]
            with open(log, "w") as out:
                p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
            _procs.append(p)
            self.server = (p, port_from_log(log, p, "loadgen serve"))
        return self.server

    def start(self, proxy, upstream, user=None):
        """Starts proxy in a cgroup of its own; None (and the reason in skipped) when it fails."""
        self.n += 1
        group = self.cg.make(f"splice-bench-{os.getpid()}-{self.n}") if proxy.kind != "direct" else None
        try:
            return proxy.start(upstream, group, user, net=self.net)
        except RuntimeError as e:
            say(f"  {e}")
            self.skipped.append(f"a run of {proxy.label}{' as ' + user if user else ''} ({e})")
            return None

    def cap(self, run, fraction):
        if run.group:
            run.group.cap(fraction)
        elif fraction is not None and run.pid:
            raise RuntimeError("capped run without a cgroup")

    def load(self, run, seconds, workloads, sample=None):
        """Runs `loadgen client` through run; returns its JSON plus the proxy's CPU and throttling.
        `sample(run)`, if given, is called every 50 ms while the client runs; its results are kept."""
        server = self.upstream()[0]
        g0 = run.group.stat() if run.group else {}
        (e0, t0), s0 = run.cpu(), ticks_cpu(server.pid)
        client = self.net.exec_in("client") if self.net else []
        p = subprocess.Popen(client + [self.loadgen, "client", f"{run.host}:{run.port}", str(seconds)] + workloads,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []

        def sampler():
            while p.poll() is None:
                samples.append(sample(run))
                time.sleep(0.05)
        t = threading.Thread(target=sampler) if sample else None
        if t:
            t.start()
        try:
            out, err = p.communicate(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err = f"loadgen hung (killed after {seconds + 120} s) {err}"
        if t:
            t.join()
        (e1, t1), s1 = run.cpu(), ticks_cpu(server.pid)
        g1 = run.group.stat() if run.group else {}
        try:
            r = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            r = {"error": (err or out).strip()[:300]}
        r["rc"] = p.returncode
        r["proxy_cpu_s"] = (e1 - e0) if e0 is not None else (t1 - t0)
        r["proxy_cpu_ticks_s"] = t1 - t0
        r["server_cpu_s"] = s1 - s0
        if g0:
            r["throttled_s"] = g1["throttled_s"] - g0["throttled_s"]
            r["nr_periods"] = g1.get("nr_periods", 0) - g0.get("nr_periods", 0)
            r["nr_throttled"] = g1.get("nr_throttled", 0) - g0.get("nr_throttled", 0)
        r["proxy_errors"] = run.new_errors()
        if sample:
            r["samples"] = samples
        if r["rc"] != 0 or "error" in r:
            say(f"  {run.proxy.label}: loadgen exit {r['rc']} {r.get('error', '')} {err.strip()[:200]}")
        return r

    def record(self, rows, run, rep, cap, r, **extra):
        row = dict(proxy=run.proxy.key, label=run.proxy.label, program=run.proxy.program, rep=rep, cap=cap)
        if run.pid:
            row["proxy_threads"] = len(os.listdir(f"/proc/{run.pid}/task"))  # after the run: HAProxy's count
        row.update(extra)
        row.update(r)
        rows.append(row)
        return row

    def meta(self, part, reps, seconds, **extra):
        m = dict(part=part, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 kernel=f"{platform.system()} {platform.release()}", cpus=os.cpu_count(), reps=reps,
                 seconds=seconds, period_us=PERIOD_US, cgroup=self.cg.kind or f"none ({self.cg.why})",
                 skipped=list(self.skipped), command=f"{'QUICK=1 ' if self.args.quick else ''}bench/run {part}",
                 quick=self.args.quick, load_before=os.getloadavg(),
                 congestion=sysctl("net/ipv4/tcp_congestion_control"))
        m.update(extra)
        return m


def reps_secs(default_reps, default_secs, args):
    reps = int(os.environ.get("REPS", default_reps))
    secs = float(os.environ.get("SECS", default_secs))
    if args.quick:
        reps, secs = 1, min(secs, 0.3)
    return reps, secs


def progress(label, r, key):
    if key == "stream" and "stream" in r:
        s = r["stream"]
        return f"{label}: {s['mbps']:.0f} MB/s, proxy {r['proxy_cpu_s']:.3f} s CPU"
    if key == "conns" and "conns" in r:
        return f"{label}: {r['conns']['per_s']:.0f} conns/s, proxy {r['proxy_cpu_s']:.3f} s CPU"
    return f"{label}: {r.get('error', 'failed')}"


# ---- parts -----------------------------------------------------------------------------------

def part_peers(b):
    """Bulk streams at every write size and 16 KiB connections/s under a 20% cap, then the same
    proxy uncapped at 64 KiB (the example proxies at every write size) and with short connections;
    repeats interleaved proxy by proxy (A B C A B C)."""
    reps, secs = reps_secs(3, 0.4, b.args)
    cap, streams = 0.2, 4
    sizes = [65536, 1 << 20] if b.args.quick else SIZES
    if not b.cg.kind:
        b.skipped.append(f"capped rows ({b.cg.why})")
    _, up = b.upstream()
    ip_port = None if b.args.quick else iperf_server(b)
    proxies = [Proxy("direct", "no proxy (generator ceiling)", "direct", program="direct")] + b.proxies
    rows = []
    for rep in range(reps):
        for px in proxies:
            run = b.start(px, up)
            if run is None:
                continue
            plan = [] if px.kind == "direct" or not b.cg.kind else \
                [(cap, f"stream={streams},{s}") for s in sizes] + [(cap, SHORT)]
            # Uncapped: 64 KiB writes and short connections for every proxy; every write size for the
            # example proxies, whose spliced path must move no less than their own --userspace.
            free_sizes = sizes if px.kind == "example" else [65536]
            plan += [(None, f"stream={streams},{s}") for s in free_sizes] + [(None, SHORT)]
            for c, w in plan:
                b.cap(run, c)
                r = b.load(run, secs, [w])
                b.record(rows, run, rep, c, r)
                say(progress(f"peers {rep + 1}/{reps} {px.label} {w} cap {c}", r, w.split("=")[0]))
            for line in run.stop():
                rows.append(dict(proxy=px.key, rep=rep, pool=line))
            if rep == 0 and ip_port and b.cg.kind and px.kind != "direct":
                rows.append(iperf_check(b, px, ip_port, cap, streams))
    return b.meta("peers", reps, secs, cap=cap, streams=streams, sizes=sizes, short=SHORT), rows


def sysctl(name):
    """A sysctl's value from /proc/sys, or "?". The TCP congestion control matters here: BBR paces
    every socket with timers even on loopback, which costs a proxy a large share of its CPU."""
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except OSError:
        return "?"


def iperf_server(b):
    """An iperf3 server for the cross-check of the load generator, or None (named in skipped)."""
    if not shutil.which("iperf3"):
        b.skipped.append("iperf3 cross-check (no `iperf3`: install iperf3)")
        return None
    port = free_port()
    p = subprocess.Popen(["iperf3", "-s", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _procs.append(p)
    wait_for(lambda: listening(port), "iperf3 -s", proc=p)
    return port


def iperf_check(b, px, port, cap, streams):
    """One iperf3 run (-P streams, 64 KiB writes, 1 s) through px capped at cap: the same quantity
    as loadgen's 64 KiB row, measured by another tool."""
    run = b.start(px, port)
    if run is None:
        return dict(proxy=px.key, label=px.label, program=px.program, rep=0, cap=cap, error="did not start")
    b.cap(run, cap)
    (e0, t0) = run.cpu()
    p = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(run.port), "-P", str(streams), "-l", "64K", "-t", "1",
                        "-J"], capture_output=True, text=True, timeout=30)
    (e1, t1) = run.cpu()
    run.stop()
    r = {"rc": p.returncode, "proxy_cpu_s": (e1 - e0) if e0 is not None else (t1 - t0)}
    try:
        end = json.loads(p.stdout)["end"]["sum_received"]
        r["iperf3"] = {"received": end["bytes"], "seconds": end["seconds"],
                       "mbps": end["bytes"] / end["seconds"] / 1e6}
    except (ValueError, KeyError):
        r["error"] = (p.stdout + p.stderr)[-300:]
    say(f"peers iperf3 cross-check {px.label}: " +
        (f"{r['iperf3']['mbps']:.0f} MB/s, proxy {r['proxy_cpu_s']:.3f} s CPU" if "iperf3" in r else r["error"]))
    return dict(proxy=px.key, label=px.label, program=px.program, rep=0, cap=cap, **r)


def nginx_start(b, files):
    """nginx with one worker, sendfile, keep-alive, no access log, on a free port; files in a temp root."""
    d = os.path.join(work, "nginx")
    os.makedirs(os.path.join(d, "www"), exist_ok=True)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    for name, size in files.items():
        with open(os.path.join(d, "www", name), "wb") as f:
            f.write(os.urandom(size))
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""{user}
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
    }}
}}
""")
    p = subprocess.Popen(["nginx", "-p", d, "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    _procs.append(p)
    wait_for(lambda: listening(port), "nginx", proc=p)
    return p, port


def nginx_worker(master):
    """The pid of nginx's worker process (its master's child)."""
    def find():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master.pid:
                        return int(pid)
            except OSError:
                pass
        return None
    wait_for(lambda: find() is not None, "nginx worker", proc=master)
    return find()


UNITS = {"us": 1, "ms": 1e3, "s": 1e6}


def wrk(run, path, conns, seconds):
    """One wrk run; requests/s, p50/p99 in microseconds, errors, and wrk's own CPU seconds."""
    p = subprocess.Popen(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{run.port}/{path}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    r = {"rc": p.returncode, "wrk_cpu_s": ru.ru_utime + ru.ru_stime}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else 0.0
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        r[f"p{q}_us"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["bad_status"] = int(m.group(1)) if m else 0
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if m:
        r["requests"] = int(m.group(1))
    if not r["rps"]:
        r["error"] = out.strip()[-300:]
    return r


def part_reqresp(b):
    """wrk through each proxy to nginx: 1 KiB and 1 MiB files, 32 keep-alive connections (and 256 at
    1 KiB with REQRESP_256=1), the proxy capped at 30% of a CPU and uncapped."""
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            return b.meta("reqresp", 0, 0, missing=f"{tool} (install {tool})"), []
    # 3 repeats of 3 s: 1 s runs disagreed with 3 s runs by 2x on 1 MiB responses per proxy core and
    # reversed the order of p99s at 1 KiB (KERNEL_NOTES.md); the report prints each spread.
    reps, secs = reps_secs(3, 3, b.args)
    cap = 0.3
    files = {"1k": 1024, "1m": 1 << 20}
    nginx, port = nginx_start(b, files)
    worker = nginx_worker(nginx)
    cases = [("1k", 32), ("1m", 32)] + ([("1k", 256)] if os.environ.get("REQRESP_256") else [])
    keys = ("epoll", "tcp", "asio", "haproxy-splice", "haproxy", "go")  # spliced against user space: see peers
    proxies = [Proxy("direct", "no proxy", "direct", program="direct")] + b.by_key(*keys)
    rows = []
    for rep in range(reps):
        for px in proxies:
            run = b.start(px, port)
            if run is None:
                continue
            caps = [None] if px.kind == "direct" or not b.cg.kind else [cap, None]
            for c in caps:
                b.cap(run, c)
                for f, n in cases:
                    (e0, t0), n0 = run.cpu(), ticks_cpu(worker)
                    r = wrk(run, f, n, secs)
                    (e1, t1), n1 = run.cpu(), ticks_cpu(worker)
                    r["proxy_cpu_s"] = (e1 - e0) if e0 is not None else (t1 - t0)
                    r["nginx_cpu_s"] = n1 - n0
                    r["seconds"] = secs
                    b.record(rows, run, rep, c, r, file=f, conns=n)
                    say(f"reqresp {rep + 1}/{reps} {px.label} /{f} -c{n} cap {c}: {r['rps']:.0f} req/s, "
                        f"p99 {r['p99_us']} us, proxy {r['proxy_cpu_s']:.3f} s CPU")
            run.stop()
    stop(nginx)
    return b.meta("reqresp", reps, secs, cap=cap, files=files, wrk="wrk -t2 --latency, keep-alive"), rows


def part_latency(b):
    """1 KiB round trips on 32 connections, alone and while 2 connections send 1 MiB writes through
    the same proxy process; proxies uncapped, on both CPUs, each with its default thread count."""
    reps, secs = reps_secs(5, 3, b.args)
    _, up = b.upstream()
    proxies = b.by_key("epoll", "haproxy-splice")
    threads = None
    if proxies and proxies[0].key == "epoll" and accepts_threads(proxies[0].path):
        threads = Proxy("epoll-t1", "epoll_proxy --threads 1", "example", proxies[0].path, ["--threads", "1"],
                        program="epoll_proxy")
        proxies.insert(1, threads)
    elif proxies and proxies[0].key == "epoll":
        b.skipped.append("epoll_proxy --threads 1 row (epoll_proxy does not accept --threads)")
    rows = []
    for rep in range(reps):
        for px in proxies:
            run = b.start(px, up)
            if run is None:
                continue
            for bulk in (False, True):
                w = (["stream=2,1048576"] if bulk else []) + ["rr=32,1024"]
                r = b.load(run, secs, w)
                b.record(rows, run, rep, None, r, bulk=bulk)
                rr = r.get("rr", {})
                say(f"latency {rep + 1}/{reps} {px.label} bulk={bulk}: p50 {rr.get('p50_us')} us, "
                    f"p99 {rr.get('p99_us')} us" + (f", bulk {r['stream']['mbps']:.0f} MB/s" if bulk and "stream" in r
                                                     else ""))
            run.stop()
    return b.meta("latency", reps, secs, rr="rr=32,1024", bulk="stream=2,1048576", capped=False), rows


def part_small(b):
    """Small request/response, as a key-value or RPC workload: 50 connections, each sending a 64-byte
    request and waiting for the 64-byte reply (loadgen's echo server), no pipelining. Every proxy with
    its default thread count (recorded per row), uncapped and capped, repeats interleaved."""
    reps, secs = reps_secs(5, 3, b.args)
    cap = 0.2
    _, up = b.upstream()
    proxies = [Proxy("direct", "no proxy", "direct", program="direct")] + \
        b.by_key("epoll", "tcp", "asio", "haproxy-splice", "haproxy", "go")
    rows = []
    for rep in range(reps):
        for px in proxies:
            for c in ((None, cap) if px.kind != "direct" else (None,)):
                run = b.start(px, up)
                if run is None:
                    continue
                b.cap(run, c)
                r = b.load(run, secs, ["rr=50,64"])
                b.record(rows, run, rep, c, r)
                rr = r.get("rr", {})
                say(f"small {rep + 1}/{reps} {px.label} cap {c}: {rr.get('per_s', 0):.0f} req/s, p50 "
                    f"{rr.get('p50_us')} us, p99 {rr.get('p99_us')} us, proxy {r['proxy_cpu_s']:.3f} s CPU")
                run.stop()
    return b.meta("small", reps, secs, cap=cap, rr="rr=50,64"), rows


def part_threads(b):
    """epoll_proxy --threads 1 against 2: each thread capped at 20% of a CPU by a cgroup of its own
    (one slow core per loop), the process capped at 40% as a whole, and uncapped."""
    reps, secs = reps_secs(3, 0.5, b.args)
    ep = b.by_key("epoll")
    if not ep or not accepts_threads(ep[0].path):
        return b.meta("threads", 0, 0, missing="epoll_proxy does not accept --threads N"), []
    if b.cg.kind != "v1":
        b.skipped.append("per-thread caps (need cgroup v1 `tasks`)")
    _, up = b.upstream()
    configs = [("per-thread 20%", "thread", 0.2), ("process 40%", "group", 0.4), ("uncapped", "group", None)]
    if b.cg.kind != "v1":
        configs = configs[1:] if b.cg.kind else configs[2:]
    work_ = ["stream=8,65536", SHORT]
    rows = []
    for rep in range(reps):
        for n in (1, 2):
            px = Proxy(f"epoll-t{n}", f"epoll_proxy --threads {n}", "example", ep[0].path, ["--threads", str(n)],
                       program="epoll_proxy")
            run = b.start(px, up)
            if run is None:
                continue
            # The loops' threads may start after the listener is announced: wait for more than n.
            try:
                wait_for(lambda: len(thread_cpu(run.pid)) > n, "threads", timeout=1)
            except RuntimeError:
                pass
            tids = sorted(thread_cpu(run.pid))
            for name, how, c in configs:
                if how == "thread":
                    run.group.cap(None)
                    run.group.per_thread(tids, c)
                else:
                    run.group.gather(tids)
                    b.cap(run, c)
                for w in work_:
                    th0 = thread_cpu(run.pid)
                    r = b.load(run, secs, [w])
                    th1 = thread_cpu(run.pid)
                    r["thread_cpu_s"] = sorted((th1.get(t, 0) - th0.get(t, 0) for t in th1), reverse=True)
                    b.record(rows, run, rep, c, r, config=name, threads=n)
                    say(progress(f"threads {rep + 1}/{reps} {px.label} {name} {w}", r, w.split("=")[0]) +
                        f", per thread {['%.3f' % x for x in r['thread_cpu_s']]}")
            run.group.gather(tids)
            run.stop()
    return b.meta("threads", reps, secs, configs=[c[0] for c in configs], workloads=work_), rows


def part_unprivileged(b):
    """The proxies as user nobody against root, at 16, 64 and 256 streams of 64 KiB writes, capped at
    one CPU (the load generator keeps the other). Nobody is held to fs.pipe-user-pages-soft; root is
    exempt. A third run as nobody starts with the budget spent by another process of the user
    (`loadgen spend-pipes`), as when other programs of the same user hold their pipes."""
    if not shutil.which("setpriv"):
        return b.meta("unprivileged", 0, 0, missing="setpriv (util-linux)"), []
    reps, secs = reps_secs(2, 0.5, b.args)
    cap = 1.0
    counts = [16, 64, 256]
    _, up = b.upstream()
    proxies = b.by_key("epoll", "tcp", "asio", "haproxy-splice", "go")
    rows = []
    for rep in range(reps):
        for px in proxies:
            for user in ("root", "nobody", "spent"):
                hog = spend_pipes(b) if user == "spent" else None
                run = b.start(px, up, user="root" if user == "root" else "nobody")
                if run is None:
                    if hog:
                        stop(hog[0])
                    continue
                b.cap(run, cap if b.cg.kind else None)
                for n in counts:
                    r = b.load(run, secs, [f"stream={n},65536"], sample=lambda run: pipes_of(run.pid))
                    most = max(r.pop("samples"), key=len, default=[])
                    r["pipes"] = {str(k): most.count(k) for k in sorted(set(most), reverse=True)}
                    if hog:
                        r["spent_by_other"] = hog[1]
                    b.record(rows, run, rep, cap, r, user=user, streams=n)
                    say(progress(f"unprivileged {rep + 1}/{reps} {px.label} as {user}, {n} streams", r, "stream") +
                        f", most pipes held: {pipe_sizes(r['pipes'])}")
                for line in run.stop():
                    rows.append(dict(proxy=px.key, rep=rep, user=user, pool=line))
                if hog:
                    stop(hog[0])
    soft = open("/proc/sys/fs/pipe-user-pages-soft").read().strip()
    return b.meta("unprivileged", reps, secs, cap=cap, counts=counts, pipe_user_pages_soft=soft), rows


def spend_pipes(b):
    """Starts `loadgen spend-pipes` as nobody; returns (process, what it holds)."""
    p = subprocess.Popen(NOBODY + [b.loadgen, "spend-pipes"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    _procs.append(p)
    return p, p.stdout.readline().strip()


def pipe_sizes(hist):
    """{"1048576": 10, "8192": 3} -> "10 x 1024K, 3 x 8K" """
    return ", ".join(f"{n} x {int(k) >> 10}K" for k, n in hist.items()) or "none"


# ---- rate --------------------------------------------------------------------------------------

class Metered:
    """A sink on 127.0.0.1 that counts what each connection delivers, and senders that push 64 KiB
    writes through a proxy as fast as it takes them: the receiving end's view of a rate limit. A
    sampler thread records (time, bytes per connection, proxy CPU) every 50 ms."""

    def __init__(self, conns):
        self.n = conns
        self.counts = [0] * conns
        self.samples = []
        self.stop = threading.Event()
        self.srv = socket.create_server(("127.0.0.1", 0), backlog=conns + 8)
        self.port = self.srv.getsockname()[1]
        self.threads = []

    def _receive(self, sock, i):
        buf = bytearray(1 << 20)
        with sock:
            while True:
                try:
                    k = sock.recv_into(buf)
                except OSError:
                    return
                if not k:
                    return
                self.counts[i] += k

    def _accept(self):
        for i in range(self.n):
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            t = threading.Thread(target=self._receive, args=(s, i), daemon=True)
            t.start()
            self.threads.append(t)

    def _send(self, port):
        chunk = memoryview(os.urandom(1 << 16))
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(0.2)
            while not self.stop.is_set():
                try:
                    s.send(chunk)
                except socket.timeout:
                    pass
                except OSError:
                    return

    def run(self, run, seconds):
        """Sends through run for `seconds`; returns the samples [(t, [bytes...], cpu_s)]."""
        acceptor = threading.Thread(target=self._accept, daemon=True)
        acceptor.start()
        senders = [threading.Thread(target=self._send, args=(run.port,), daemon=True) for _ in range(self.n)]
        for t in senders:
            t.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            exact, ticks = run.cpu()
            self.samples.append((time.monotonic(), list(self.counts), exact if exact is not None else ticks))
            time.sleep(0.05)
        self.stop.set()
        for t in senders:
            t.join(5)
        self.srv.close()  # the receivers (daemon threads) end when the proxy closes their connections
        return self.samples


def at(samples, t):
    """The sample nearest to time t (samples every 50 ms)."""
    return min(samples, key=lambda s: abs(s[0] - t))


def window(samples, start=1.0, end=5.0):
    """Delivered bytes per second, per connection and in all, and the proxy's CPU share, over seconds
    start..end of the transfer (from the first byte the sink received)."""
    first = next((s for s in samples if sum(s[1]) > 0), None)
    if first is None:
        return None
    a, b = at(samples, first[0] + start), at(samples, first[0] + end)
    dt = b[0] - a[0]
    if dt <= 0:
        return None
    per = [(y - x) / dt for x, y in zip(a[1], b[1])]
    return {"window_s": dt, "rate": sum(per), "per_conn_min": min(per), "per_conn_max": max(per),
            "cpu_share": (b[2] - a[2]) / dt, "bytes": sum(b[1]) - sum(a[1])}


def pool_line(lines):
    """(spliced, copied) bytes from the proxy's "pipes: ..." line, or None."""
    for line in lines:
        m = re.search(r"spliced (\d+) bytes, copied (\d+)", line)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def part_rate(b):
    """--rate and --rate-total through epoll_proxy and tcp_proxy: the rate the receiver sees over
    seconds 1-5 of a transfer (target: within 5% of the limit), the proxy's CPU while it limits
    (target: under 15% of one CPU), the share of bytes spliced; then CPU seconds per GiB with and
    without a limit (loadgen streams), and rate_bench, the shared bucket from 1 and 2 threads."""
    reps, secs = reps_secs(1, 6, b.args)
    secs = max(secs, 6) if not b.args.quick else 2.5
    proxies = b.by_key("epoll", "tcp")
    cases = [(1_000_000, 1, "rate"), (1_000_000, 50, "rate"), (1_000_000, 50, "rate-total"),
             (100_000_000, 1, "rate"), (100_000_000, 50, "rate-total")]
    if b.args.quick:
        cases = [(1_000_000, 1, "rate"), (100_000_000, 50, "rate-total")]
    rows = []
    for rep in range(reps):
        for px in proxies:
            for limit, n, flag in cases:
                lim = Proxy(px.key, px.label, px.kind, px.path, [f"--{flag}", str(limit), "--max-conns", "4096"],
                            program=px.program)
                m = Metered(n)
                run = b.start(lim, m.port)
                if run is None:
                    continue
                samples = m.run(run, secs)
                w = window(samples, 1.0, min(5.0, secs - 0.5))
                total = limit if flag == "rate-total" else limit * n
                r = {"limit": limit, "conns": n, "flag": flag, "total_limit": total, "seconds": secs}
                if w:
                    r.update(w)
                    r["accuracy"] = w["rate"] / total
                    r["fair_share"] = total / n
                row = b.record(rows, run, rep, None, r, rate_kind="accuracy")
                # The senders' sockets still hold seconds of bytes at the limit: a first SIGTERM
                # drains, the second (in stop()) cuts, and every connection logs its line.
                run.proc.send_signal(signal.SIGTERM)
                time.sleep(0.2)
                pool = row["pool_bytes"] = pool_line(run.stop())
                with open(run.log) as f:
                    spliced_conns = row["spliced_conns"] = sum(1 for line in f if line.startswith("conn ") and
                                                               "spliced yes" in line)
                say(f"rate {rep + 1}/{reps} {px.label} --{flag} {limit} x {n} conns: " +
                    (f"{w['rate'] / 1e6:.3f} MB/s ({r['accuracy']:.1%} of {total / 1e6:g}), CPU {w['cpu_share']:.1%}, "
                     f"per conn {w['per_conn_min'] / 1e6:.3f}-{w['per_conn_max'] / 1e6:.3f} MB/s, "
                     f"spliced {spliced_conns}/{n}, pool {pool}" if w else "no bytes"))
            # CPU per GiB: loadgen streams without a limit, and at 100 MB/s per connection or in all.
            _, up = b.upstream()
            for flags, w in [([], "stream=1,65536"), (["--rate", "100000000"], "stream=1,65536"),
                             ([], "stream=50,65536"), (["--rate-total", "100000000"], "stream=50,65536")]:
                run = b.start(Proxy(px.key, px.label, px.kind, px.path, flags, program=px.program), up)
                if run is None:
                    continue
                r = b.load(run, min(secs, 3), [w])
                row = b.record(rows, run, rep, None, r, rate_kind="cost", flags=" ".join(flags) or "none", workload=w)
                row["pool_bytes"] = pool_line(run.stop())
                s = r.get("stream", {})
                say(f"rate cost {rep + 1}/{reps} {px.label} {' '.join(flags) or 'no limit'} {w}: " +
                    (f"{s['mbps']:.0f} MB/s, {r['proxy_cpu_s'] / (s['received'] / 2**30):.3f} CPU s/GiB"
                     if s.get("received") else r.get("error", "failed")))
    micro = os.path.join(b.build, "bench", "rate_bench")
    if os.access(micro, os.X_OK):
        p = subprocess.run([micro, "--benchmark_format=json", f"--benchmark_min_time={0.05 if b.args.quick else 0.5}",
                            "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true"],
                           capture_output=True, text=True, timeout=300)
        try:
            for bm in json.loads(p.stdout)["benchmarks"]:
                if bm.get("aggregate_name") == "median":
                    rows.append(dict(rate_kind="micro", name=bm["run_name"], ns=bm["real_time"], threads=bm.get("threads", 1),
                                     items_per_s=bm.get("items_per_second")))
                    say(f"rate_bench {bm['run_name']}: {bm['real_time']:.1f} ns")
        except (ValueError, KeyError):
            b.skipped.append(f"rate_bench (failed: {(p.stderr or p.stdout)[-200:]})")
    else:
        b.skipped.append(f"rate_bench (not built: {micro} missing)")
    return b.meta("rate", reps, secs, cases=[list(c) for c in cases], window="seconds 1-5 of the transfer"), rows


def part_netns(b):
    """The peers part's workloads across network namespaces (bench/netns.py): client, proxy and
    server each in a namespace of their own, joined by veth pairs (MTU 1500). Per repeat and proxy:
    on the veths, 4 streams at 4 KiB, 64 KiB and 1 MiB writes and 16 KiB connections capped at 20%,
    then uncapped (64 KiB and connections; every size for the example proxies), then 64 KiB writes
    uncapped over the proxy -> server link shaped to 1 Gbit/s by tbf; and, as the reference in the
    same repeat, the same proxy on loopback capped at 64 KiB and with connections. Every row says
    its topology. Namespaces and veths are deleted at the end, on an error and on Ctrl-C."""
    import netns
    topo = netns.Topology()
    try:
        topo.create()
    except netns.Unavailable as e:
        say(f"SKIP netns: {e}")
        return b.meta("netns", 0, 0, missing=str(e)), []
    lo_server = b.upstream()  # the loopback server of the other parts, for the reference rows
    try:
        return netns_rows(b, topo, lo_server)
    finally:
        b.net, b.server = None, lo_server
        for p in _procs:  # whatever still runs in a namespace (after an error), so that it can go
            if p.poll() is None and topo.holds(p.pid):
                stop(p)
        topo.teardown()


def netns_placed(run, topo):
    """Why a proxy started under `ip netns exec` is not where it must be (its cgroup, the proxy
    namespace), or None. The harness moves the pid before exec; ip execs the proxy in that pid."""
    if not run.pid:
        return None
    if not topo.holds(run.pid, "proxy"):
        return f"pid {run.pid} is not in {topo.ns['proxy']}"
    if run.group:
        name = os.path.basename(run.group.dirs[0])
        lines = [ln for ln in open(f"/proc/{run.pid}/cgroup").read().splitlines()
                 if run.group.kind == "v2" or {"cpu", "cpuacct"} & set(ln.split(":")[1].split(","))]
        if not lines or not all(ln.endswith("/" + name) for ln in lines):
            return f"pid {run.pid} is not in its cgroup {name}: {'; '.join(lines)}"
    return None


def netns_rows(b, topo, lo_server):
    import netns
    reps, secs = reps_secs(3, 0.4, b.args)
    cap, streams = 0.2, 4
    sizes = [65536] if b.args.quick else [4096, 65536, 1 << 20]
    veth, shaped, lo = "veth", f"veth, {topo.rate} tbf proxy->server", "loopback"
    if not b.cg.kind:
        b.skipped.append(f"capped rows ({b.cg.why})")
    b.net, b.server = topo, None
    ns_server = b.upstream()
    try:
        topo.shape()
        topo.unshape()
        can_shape = True
    except netns.Unavailable as e:
        b.skipped.append(f"the shaped rows ({e})")
        can_shape = False
    proxies = [Proxy("direct", "no proxy (routed through the proxy namespace)", "direct", program="direct")] + \
        b.proxies
    placed = []
    rows = []
    for rep in range(reps):
        for px in proxies:
            # On the veths: capped, uncapped, then shaped, one proxy process.
            b.net, b.server = topo, ns_server
            run = b.start(px, ns_server[1])
            if run is None:
                continue
            why = netns_placed(run, topo)
            if why:
                b.skipped.append(f"{px.label} on the veths ({why})")
                run.stop()
                continue
            if run.pid:
                placed.append(px.key)
            plan = [] if px.kind == "direct" or not b.cg.kind else \
                [(cap, f"stream={streams},{s}") for s in sizes] + [(cap, SHORT)]
            free_sizes = sizes if px.kind == "example" else [65536]
            plan += [(None, f"stream={streams},{s}") for s in free_sizes] + [(None, SHORT)]
            plan = [(veth, c, w) for c, w in plan] + ([(shaped, None, f"stream={streams},65536")] if can_shape else [])
            for topology, c, w in plan:
                b.cap(run, c)
                if topology == shaped:
                    topo.shape()
                try:
                    r = b.load(run, secs, [w])
                finally:
                    if topology == shaped:
                        topo.unshape()
                b.record(rows, run, rep, c, r, topology=topology)
                say(progress(f"netns {rep + 1}/{reps} {px.label} [{topology}] {w} cap {c}", r, w.split("=")[0]))
            for line in run.stop():
                rows.append(dict(proxy=px.key, rep=rep, topology=veth, pool=line))
            if px.kind == "direct" or not b.cg.kind:
                continue
            # The same proxy on loopback in the same repeat: the reference for veth / loopback.
            b.net, b.server = None, lo_server
            run = b.start(px, lo_server[1])
            if run is None:
                continue
            for w in (f"stream={streams},65536", SHORT):
                b.cap(run, cap)
                r = b.load(run, secs, [w])
                b.record(rows, run, rep, cap, r, topology=lo)
                say(progress(f"netns {rep + 1}/{reps} {px.label} [{lo}] {w} cap {cap}", r, w.split("=")[0]))
            run.stop()
    return b.meta("netns", reps, secs, cap=cap, streams=streams, sizes=sizes, short=SHORT,
                  topologies=[veth, shaped, lo], topology=topo.describe(),
                  placement=f"Checked after each start: every proxy pid in its cgroup and in {topo.ns['proxy']} "
                            f"({len(set(placed))} proxies)"), rows


PARTS = {"peers": part_peers, "reqresp": part_reqresp, "latency": part_latency, "small": part_small,
         "threads": part_threads, "unprivileged": part_unprivileged, "rate": part_rate, "netns": part_netns}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="+", choices=list(PARTS))
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out"))
    ap.add_argument("--quick", action="store_true", help="one short repeat of fewer cases: checks the harness")
    args = ap.parse_args()
    atexit.register(cleanup)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, lambda *_: sys.exit(130))
    os.makedirs(args.out, exist_ok=True)
    b = Bench(args)
    missing = list(b.skipped)  # proxies and peers that are not there, for every part
    for name in args.parts:
        b.skipped = list(missing)
        t0 = time.monotonic()
        meta, rows = PARTS[name](b)
        meta["elapsed_s"] = round(time.monotonic() - t0, 1)
        meta["skipped"] = list(dict.fromkeys(meta["skipped"] + b.skipped))
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
        say(f"{name}: {meta['elapsed_s']} s" + (f"; skipped: {', '.join(meta['skipped'])}" if meta["skipped"] else ""))


if __name__ == "__main__":
    main()
