# SPDX-License-Identifier: MIT
"""End-to-end test of --metrics: each proxy given runs with --metrics, known traffic goes through it,
curl fetches GET /metrics, prometheus_client parses it, and the byte counters and connection counts
must match the traffic exactly. Bad clients of the metrics port (silent, oversized, wrong method or
path) must not stop it from answering. Usage: metrics.py PROXY [PROXY...]; prints PASS or FAIL per
check and exits 1 on any failure."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

failed = 0


def check(name, ok, detail=""):
    global failed
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else f": {detail}"), flush=True)
    failed += not ok


def down_size(up):
    """The bytes the upstream sends back for a connection that sent `up` bytes."""
    return up // 3 + 777


def upstream():
    """A server that reads until end of file, then answers down_size(bytes read) bytes and closes."""
    srv = socket.create_server(("127.0.0.1", 0), backlog=64)

    def one(conn):
        with conn:
            n = 0
            while data := conn.recv(1 << 16):
                n += len(data)
            conn.sendall(b"d" * down_size(n))
            conn.shutdown(socket.SHUT_WR)

    def serve():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv.getsockname()[1]


def exchange(port, up):
    """Sends `up` bytes through the proxy, half-closes, and returns how many bytes came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        threading.Thread(target=lambda: (s.sendall(b"u" * up), s.shutdown(socket.SHUT_WR)), daemon=True).start()
        got = 0
        while data := s.recv(1 << 16):
            got += len(data)
        return got


def scrape(port):
    """Fetches /metrics with curl; returns {(sample name, labels...): value}."""
    out = subprocess.run(["curl", "-sS", "--fail", "--max-time", "5", f"http://127.0.0.1:{port}/metrics"],
                         check=True, capture_output=True, text=True).stdout
    values = {}
    for family in text_string_to_metric_families(out):
        for s in family.samples:
            values[(s.name,) + tuple(sorted(s.labels.items()))] = s.value
    return values


def total(values, name):
    return sum(v for k, v in values.items() if k[0] == name)


def line_with(proc_out, prefix, deadline):
    """Reads the proxy's stdout until a line starting with prefix; returns its port."""
    while time.monotonic() < deadline:
        line = proc_out.readline()
        if not line:
            break
        if line.startswith(prefix):
            return int(line.rsplit(":", 1)[1])
    raise RuntimeError(f"no '{prefix}' line from the proxy")


def raw(port, payload, wait=True):
    """Sends payload to the metrics port and returns the status line of the answer (or '')."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        try:
            while wait and (chunk := s.recv(4096)):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return data.split(b"\r\n", 1)[0].decode(errors="replace")


def run(proxy, extra, up_port, name, wait_timeout):
    cmd = [proxy, "127.0.0.1:0", f"127.0.0.1:{up_port}", "--metrics", "127.0.0.1:0"] + extra
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        port = line_with(p.stdout, "listening on", deadline)
        mport = line_with(p.stdout, "metrics on", deadline)
        threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()  # drain the log

        silent = socket.create_connection(("127.0.0.1", mport))  # a client that never speaks
        opened_silent = time.monotonic()
        v = scrape(mport)
        check(f"{name}: fresh counters", total(v, "splice_connections_total") == 0 and
              total(v, "splice_bytes_total") == 0, v)
        check(f"{name}: every family present", all(any(k[0] == n for k in v) for n in (
            "splice_connections_open", "splice_connections_total", "splice_bytes_total", "splice_spliced_bytes_total",
            "splice_userspace_bytes_total", "splice_pipes", "splice_pipe_budget_bytes", "splice_rate_waits_total",
            "splice_mirrors_cut_total", "splice_errors_total")), sorted({k[0] for k in v}))

        sizes = [1 << 20, 100_000, 3 << 20, 10, 0, 65_536]
        got = [exchange(port, n) for n in sizes]
        check(f"{name}: traffic", got == [down_size(n) for n in sizes], got)

        # One connection held open: it counts as open until it ends.
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"h" * 1000)
        for _ in range(100):  # until the relay has moved the 1000 bytes
            v = scrape(mport)
            if v.get(("splice_bytes_total", ("direction", "up")), 0) == sum(sizes) + 1000:
                break
            time.sleep(0.05)
        check(f"{name}: held connection open", v.get(("splice_connections_open",)) == 1 and
              v.get(("splice_connections_total",)) == len(sizes) + 1, v)
        held.shutdown(socket.SHUT_WR)
        while held.recv(1 << 16):
            pass
        held.close()

        # Bad clients: none of them may keep the server from answering.
        check(f"{name}: wrong path is 404", raw(mport, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n") == "HTTP/1.1 404 Not Found")
        check(f"{name}: wrong method is 405", raw(mport, b"POST /metrics HTTP/1.1\r\n\r\n").startswith("HTTP/1.1 405"))
        check(f"{name}: garbage is 400", raw(mport, b"hello\r\n\r\n").startswith("HTTP/1.1 400"))
        check(f"{name}: an endless head is cut", raw(mport, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
              in ("HTTP/1.1 431 Request Header Fields Too Large", ""))
        lingering = [socket.create_connection(("127.0.0.1", mport)) for _ in range(5)]
        lingering[0].sendall(b"GET /met")  # half a request, never finished

        want_up, want_down = sum(sizes) + 1000, sum(down_size(n) for n in sizes) + down_size(1000)
        for _ in range(100):  # until every relay has ended
            v = scrape(mport)
            if v.get(("splice_connections_open",)) == 0 and total(v, "splice_bytes_total") == want_up + want_down:
                break
            time.sleep(0.05)
        up = v.get(("splice_bytes_total", ("direction", "up")))
        down = v.get(("splice_bytes_total", ("direction", "down")))
        check(f"{name}: bytes up", up == want_up, f"{up} != {want_up}")
        check(f"{name}: bytes down", down == want_down, f"{down} != {want_down}")
        check(f"{name}: connections", v.get(("splice_connections_open",)) == 0 and
              v.get(("splice_connections_total",)) == len(sizes) + 1, v)
        spliced, user = v.get(("splice_spliced_bytes_total",)), total(v, "splice_userspace_bytes_total")
        check(f"{name}: spliced + user space = all", spliced + user == want_up + want_down, (spliced, user))
        if "--userspace" in extra:
            check(f"{name}: user space for the option", spliced == 0 and
                  v.get(("splice_userspace_bytes_total", ("reason", "option"))) == user, v)
        else:
            check(f"{name}: spliced", spliced > 0, spliced)
        check(f"{name}: no errors", total(v, "splice_errors_total") == 0, v)
        check(f"{name}: pipes counted", ("splice_pipes", ("state", "idle")) in v and ("splice_pipes", ("state", "in_use")) in v)

        # The silent client is closed by the server's timeout (5 s from its accept); waited for in
        # the first run only, to keep the test short.
        if wait_timeout:
            silent.settimeout(max(1.0, 7 - (time.monotonic() - opened_silent)))
            try:
                closed = silent.recv(1) == b""
            except (ConnectionResetError, socket.timeout):
                closed = False
            check(f"{name}: a silent client is closed by the timeout", closed)
        for s in lingering + [silent]:
            s.close()

        p.send_signal(signal.SIGTERM)
        check(f"{name}: exits 0 on SIGTERM", p.wait(timeout=10) == 0)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    up_port = upstream()
    for i, proxy in enumerate(sys.argv[1:]):
        name = os.path.basename(proxy)
        try:
            run(proxy, [], up_port, name, i == 0)
            if name == "epoll_proxy":
                run(proxy, ["--userspace"], up_port, name + " --userspace", False)
        except Exception as e:  # noqa: BLE001 (a failure of the harness is a failure of the test)
            check(f"{name}: ran", False, repr(e))
    print(f"metrics: {'all passed' if not failed else f'{failed} failed'}")
    sys.exit(1 if failed else 0)


main()
