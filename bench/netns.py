# SPDX-License-Identifier: MIT
"""The topology of the `netns` part of bench/proxy_bench.py: the load generator's client, the proxy
and the load generator's server each in a network namespace of their own, joined by two veth pairs,
so that bytes cross real (virtual) links with their queues, GRO and softirq work instead of
loopback:

    client ns                 proxy ns                         server ns
    veth 10.77.1.2/24 <-----> 10.77.1.1/24  10.77.2.1/24 <----> 10.77.2.2/24 veth
                              (forwards, for the no-proxy row)

Every interface is created inside its namespace (`ip -n NS link add ... peer ... netns NS2`), so
nothing appears in the host's namespace, and namespaces are named after this process
(splice-bench-PID-client, ...) so that two runs never collide. The proxy namespace forwards
between its two links, so that a client can reach the server with no proxy in between (the
generator's ceiling on the same links).

`shape()` puts a tbf qdisc (1 Gbit/s by default) on the proxy's link toward the server, the
egress of the proxy namespace's 10.77.2.1 interface, which every byte to the server leaves by,
proxied or forwarded; `unshape()` removes it.

Topology.create() raises Unavailable (with the reason) when it cannot be built: not root, no `ip`,
or the kernel refusing a namespace or a veth. teardown() deletes the namespaces (their veths go with
them); it is safe to call more than once and is registered with atexit as well, so that Ctrl-C or
an error anywhere leaves nothing behind. Namespaces left by a run that was killed with SIGKILL are
deleted by the next run (their PID no longer exists).
"""
import atexit
import os
import re
import shutil
import subprocess

PREFIX = "splice-bench-"
ROLES = ("client", "proxy", "server")


class Unavailable(Exception):
    pass


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise Unavailable(f"`ip {' '.join(args)}` failed: {(r.stderr or r.stdout).strip()[:200]}")
    return r


def existing():
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def remove_stale():
    """Deletes the namespaces of earlier runs whose process is gone (one killed with SIGKILL)."""
    for name in existing():
        m = re.fullmatch(PREFIX + r"(\d+)-(client|proxy|server)", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            ip("netns", "del", name, check=False)


class Topology:
    client_ip, proxy_client_ip = "10.77.1.2", "10.77.1.1"
    proxy_ip, proxy_server_ip, server_ip = "10.77.1.1", "10.77.2.1", "10.77.2.2"
    mtu = 1500  # the veth default, as on an Ethernet link

    def __init__(self, rate="1gbit"):
        pid = os.getpid()
        self.ns = {role: f"{PREFIX}{pid}-{role}" for role in ROLES}
        self.rate = rate
        self.made = []
        self.shaped = False
        # The proxy namespace's interfaces: toward the client, toward the server (the shaped one).
        self.dev_client, self.dev_server = "to-client", "to-server"

    # ---- setup and teardown --------------------------------------------------------------------

    def create(self):
        if os.geteuid() != 0:
            raise Unavailable("needs root (ip netns add, veth pairs)")
        if not shutil.which("ip"):
            raise Unavailable("no `ip` (install iproute2)")
        if not shutil.which("ss"):
            raise Unavailable("no `ss` (install iproute2)")
        atexit.register(self.teardown)
        remove_stale()
        try:
            for role in ROLES:
                ip("netns", "add", self.ns[role])
                self.made.append(self.ns[role])
            c, p, s = (self.ns[r] for r in ROLES)
            ip("-n", c, "link", "add", "to-proxy", "type", "veth", "peer", "name", self.dev_client, "netns", p)
            ip("-n", s, "link", "add", "to-proxy", "type", "veth", "peer", "name", self.dev_server, "netns", p)
            for ns, dev, addr in ((c, "to-proxy", self.client_ip), (p, self.dev_client, self.proxy_client_ip),
                                  (p, self.dev_server, self.proxy_server_ip), (s, "to-proxy", self.server_ip)):
                ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
                ip("-n", ns, "link", "set", dev, "mtu", str(self.mtu), "up")
            for ns in (c, p, s):
                ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", c, "route", "add", "default", "via", self.proxy_client_ip)
            ip("-n", s, "route", "add", "default", "via", self.proxy_server_ip)
            self.sysctl("proxy", "net.ipv4.ip_forward", "1")
            self.check()
        except BaseException:
            self.teardown()
            raise
        return self

    def check(self):
        """One ping each way across the proxy namespace: the links are up and the routes right."""
        r = subprocess.run(self.exec_in("client") + ["ping", "-c1", "-W2", self.server_ip], capture_output=True,
                           text=True) if shutil.which("ping") else None
        if r is not None and r.returncode != 0:
            raise Unavailable(f"client cannot reach the server through the proxy namespace: {r.stdout.strip()[-200:]}")

    def teardown(self):
        """Deletes the qdisc and the namespaces made; the veths are destroyed with them."""
        if self.shaped:
            self.unshape()
        while self.made:
            ip("netns", "del", self.made.pop(), check=False)

    # ---- use -----------------------------------------------------------------------------------

    def exec_in(self, role):
        """The argv prefix that runs a command in a role's namespace. `ip netns exec` switches the
        namespace and execs the command in the same process, so a pid moved into a cgroup before
        the exec (the harness's preexec_fn) keeps the cgroup."""
        return ["ip", "netns", "exec", self.ns[role]]

    def sysctl(self, role, name, value=None):
        args = ["sysctl", "-n", name] if value is None else ["sysctl", "-qw", f"{name}={value}"]
        r = subprocess.run(self.exec_in(role) + args, capture_output=True, text=True)
        if value is not None and r.returncode != 0:
            raise Unavailable(f"sysctl {name}={value} in {self.ns[role]}: {r.stderr.strip()[:200]}")
        return r.stdout.strip() if r.returncode == 0 else "?"

    def listening(self, role, port):
        out = subprocess.run(self.exec_in(role) + ["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True).stdout
        return bool(out.strip())

    def holds(self, pid, role=None):
        """Whether process pid is in the namespace of role (any of the three when None)."""
        try:
            mine = os.stat(f"/proc/{pid}/ns/net").st_ino
            return any(os.stat(f"/run/netns/{self.ns[r]}").st_ino == mine
                       for r in ([role] if role else ROLES) if self.ns[r] in self.made)
        except OSError:
            return False

    def shape(self):
        """tbf at self.rate on the proxy's egress toward the server. The burst holds a few full GSO
        packets (the veth keeps TSO/GSO, so one packet can be 64 KiB); the latency bound keeps the
        queue short."""
        ip("-n", self.ns["proxy"], "link", "show", self.dev_server)
        r = subprocess.run(["tc", "-n", self.ns["proxy"], "qdisc", "replace", "dev", self.dev_server, "root", "tbf",
                            "rate", self.rate, "burst", "256kb", "latency", "10ms"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Unavailable(f"tc tbf: {r.stderr.strip()[:200]}")
        self.shaped = True

    def unshape(self):
        subprocess.run(["tc", "-n", self.ns["proxy"], "qdisc", "del", "dev", self.dev_server, "root"],
                       capture_output=True)
        self.shaped = False

    def describe(self):
        """What the report prints about the topology, and the settings that differ by namespace."""
        return dict(namespaces=self.ns, mtu=self.mtu, client=self.client_ip, proxy=self.proxy_ip,
                    proxy_upstream=self.proxy_server_ip, server=self.server_ip, shaped_link=(
                        f"tbf rate {self.rate} burst 256kb latency 10ms on the proxy namespace's {self.dev_server} "
                        "(proxy -> server)"),
                    congestion={r: self.sysctl(r, "net.ipv4.tcp_congestion_control") for r in ROLES},
                    tcp_wmem=self.sysctl("client", "net.ipv4.tcp_wmem"),
                    tcp_rmem=self.sysctl("server", "net.ipv4.tcp_rmem"),
                    offloads=self.offloads())

    def offloads(self):
        if not shutil.which("ethtool"):
            return "?"
        out = subprocess.run(self.exec_in("proxy") + ["ethtool", "-k", self.dev_client], capture_output=True,
                             text=True).stdout
        keep = ("tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload")
        return {k: v.split()[0] for k, v in re.findall(r"^([\w-]+): (.*)$", out, re.M) if k in keep}
