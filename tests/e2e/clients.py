#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end clients that go through a proxy on 127.0.0.1:PORT.

usage: clients.py echo PORT CONNECTIONS   many connections at once, random payloads, each echoed back whole
       clients.py halfclose PORT         send, shut the write side, then receive the whole answer
       clients.py soak PORT SECONDS N    N workers open, verify and close connections until SECONDS pass
       clients.py queue PORT N           N echo connections opened before any sends, each echoed whole
       clients.py served PORT SECONDS    one echo connection, answered within SECONDS
       clients.py refused PORT           one connection, closed by the proxy without an answer
       clients.py expiry PORT TIMEOUT    idle connections end in order while others ping and stream
       clients.py urgent PORT PID        TCP urgent data to a sink, compared with a direct connection
Exits 0 when every byte checks out.
"""
import asyncio
import hashlib
import os
import random
import socket
import sys
import threading
import time


async def one_echo(port, i, size=None):
    payload = os.urandom(size if size is not None else 1000 + (i * 7919) % 200000)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    async def send():
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
    sender = asyncio.create_task(send())
    got = await reader.read(-1)
    await sender
    writer.close()
    return got == payload


async def echo(port, n):
    results = await asyncio.gather(*(one_echo(port, i) for i in range(n)))
    bad = results.count(False)
    print(f"echo: {n - bad} passed, {bad} failed")
    return bad == 0


async def soak(port, seconds, workers):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counts = [0, 0]

    async def worker(w):
        rng = random.Random(w)
        while loop.time() < deadline:
            try:
                ok = await one_echo(port, 0, rng.choice((1, 100, 4096, 65536, rng.randrange(1, 1 << 18))))
            except OSError:
                ok = False
            counts[0 if ok else 1] += 1

    await asyncio.gather(*(worker(w) for w in range(workers)))
    print(f"soak: {counts[0]} passed, {counts[1]} failed")
    return counts[1] == 0 and counts[0] > 0


def halfclose(port):
    question = os.urandom(3 << 20)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(question)
    s.shutdown(socket.SHUT_WR)
    answer = b""
    while chunk := s.recv(1 << 16):
        answer += chunk
    ok = answer == hashlib.sha256(question).digest() * (1 << 17)
    print(f"halfclose: {int(ok)} passed, {int(not ok)} failed")
    return ok


async def queue(port, n, seconds=20):
    """All n connections are open before any sends, so those past the proxy's fd limit wait in its
    listen queue with nothing new arriving; each must still be echoed whole."""
    conns = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(n)))

    async def one(reader, writer):
        payload = os.urandom(1 << 16)
        writer.write(payload)
        writer.write_eof()
        got = await reader.read(-1)
        writer.close()
        return got == payload

    tasks = [asyncio.create_task(one(r, w)) for r, w in conns]
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    good = sum(1 for t in done if not t.exception() and t.result())
    print(f"queue: {good} passed, {n - good} failed ({len(pending)} still waiting after {seconds} s)")
    for t in pending:
        t.cancel()
    return good == n


def served(port, seconds):
    answer = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=seconds) as s:
            s.sendall(b"ping")
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(64):
                answer += chunk
    except OSError as e:
        print(f"served: {e}")
    print(f"served: answer {answer!r}")
    return answer == b"ping"


def refused(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        got = s.recv(64)
    except ConnectionResetError:
        got = b""
    except OSError as e:
        print(f"refused: {e}")
        return False
    print(f"refused: closed, {len(got)} bytes received")
    return got == b""


async def expiry(port, timeout, bound=5.0):
    """Three idle connections opened 0.3 s apart, one that sends a byte every 0.1 s and has it
    echoed, and one that streams bulk data through the echo server, all through a proxy with
    --idle-timeout TIMEOUT. Each idle one must be ended no sooner than TIMEOUT after it opened and
    no later than TIMEOUT + bound (generous: only a loop that the stream starves misses it), in the
    order they opened; the other two live on, and the stream comes back byte-exact."""
    loop = asyncio.get_running_loop()
    idle_over = asyncio.Event()

    async def idle(i):
        await asyncio.sleep(0.3 * i)
        opened = loop.time()  # before the connect: the proxy's clock starts later
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            got = await asyncio.wait_for(reader.read(1), timeout + bound)
        except asyncio.TimeoutError:
            return f"idle {i}: still open after {timeout + bound} s"
        except ConnectionError:
            got = b""
        writer.close()
        return (opened, loop.time()) if got == b"" else f"idle {i}: received {got!r}"

    async def pinger():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while not idle_over.is_set():
            writer.write(b"p")
            await asyncio.wait_for(reader.readexactly(1), bound)
            n += 1
            await asyncio.sleep(0.1)
        writer.close()
        return n

    async def bulk():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def count():
            n = 0
            while data := await reader.read(1 << 20):
                n += len(data)
            return n

        counter = asyncio.create_task(count())
        chunk, sent = os.urandom(1 << 20), 0
        while not idle_over.is_set():
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0)
        writer.write_eof()
        got = await asyncio.wait_for(counter, bound)
        writer.close()
        return sent, got

    async def idle_ones():
        try:
            return await asyncio.gather(*(idle(i) for i in range(3)))
        finally:
            idle_over.set()

    ended, pings, streamed = await asyncio.gather(idle_ones(), pinger(), bulk(), return_exceptions=True)
    failures = [repr(e) for e in (ended, pings, streamed) if isinstance(e, BaseException)]
    if not failures:
        failures = [e for e in ended if isinstance(e, str)]
    if not failures:
        after = [closed - opened for opened, closed in ended]
        print(f"expiry: idle connections ended after {', '.join(f'{t:.2f}' for t in after)} s; "
              f"{pings} pings echoed; {streamed[0] >> 20} MiB streamed and echoed meanwhile")
        if min(after) < timeout - 0.005:
            failures.append(f"an idle connection ended before {timeout} s")
        if [closed for _, closed in ended] != sorted(closed for _, closed in ended):
            failures.append("the idle connections did not end in the order they opened")
        if streamed[0] == 0 or streamed[0] != streamed[1]:
            failures.append(f"bulk: sent {streamed[0]} bytes, echoed {streamed[1]}")
    for f in failures:
        print(f"expiry: {f}")
    return not failures


def cpu_ticks(pid):
    """Returns the user and system CPU time of process pid so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def urgent(port, pid, idle_seconds=0.5):
    """Sends "hello", one urgent byte (MSG_OOB), then "world" and 1 MiB more. What the sink behind
    the proxy reads must equal what a read loop on a direct connection fed the same sends gets,
    with all bytes queued before it reads (SO_OOBINLINE off: the urgent byte is not in the stream).
    The connection is then held open idle for a while, and the proxy must not spin meanwhile."""
    rest = b"world" + os.urandom(1 << 20)

    def send_all(s):
        s.sendall(b"hello")
        s.send(b"!", socket.MSG_OOB)
        s.sendall(rest)

    # The direct connection, with buffers large enough to hold everything before the first read.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        a = socket.socket()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        a.connect(listener.getsockname())
        b, _ = listener.accept()
    sender = threading.Thread(target=lambda: (send_all(a), a.close()))
    sender.start()
    sender.join(2)  # then read anyway: the buffers were smaller than asked
    direct = b""
    while chunk := b.recv(1 << 20):
        direct += chunk
    sender.join()
    b.close()
    want = f"{len(direct)} {hashlib.sha256(direct).hexdigest()}"

    failures = []
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        send_all(s)
        sent = True
    except OSError as e:
        failures.append(f"send: {e}")
        sent = False
    # A copier that spins at the mark burns a whole CPU; a quiet one next to nothing. The share is
    # taken over the time that actually passed, so a sleep that lasts longer changes nothing.
    before, start = cpu_ticks(pid), time.monotonic()
    time.sleep(idle_seconds)
    spent, elapsed = cpu_ticks(pid) - before, time.monotonic() - start
    if spent > 0.2 * elapsed * os.sysconf("SC_CLK_TCK"):
        failures.append(f"the proxy used {spent} CPU ticks in {elapsed:.2f} s while the peer was quiet")
    got = ""
    if sent:
        s.shutdown(socket.SHUT_WR)
        try:
            while chunk := s.recv(256):
                got += chunk.decode()
        except OSError as e:
            failures.append(f"answer: {e}")
        if got.strip() != want:
            failures.append(f"the sink read {got.split(' ')[0] or 'nothing'}, a direct read {len(direct)} bytes")
    s.close()
    print(f"urgent: direct read {len(direct)} bytes; through the proxy, the sink read {got.strip() or '?'}; "
          f"proxy CPU in {idle_seconds} s idle: {spent} ticks")
    for f in failures:
        print(f"urgent: {f}")
    return not failures


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "echo":
        ok = asyncio.run(echo(port, int(sys.argv[3])))
    elif mode == "soak":
        ok = asyncio.run(soak(port, float(sys.argv[3]), int(sys.argv[4])))
    elif mode == "queue":
        ok = asyncio.run(queue(port, int(sys.argv[3])))
    elif mode == "served":
        ok = served(port, float(sys.argv[3]))
    elif mode == "refused":
        ok = refused(port)
    elif mode == "expiry":
        ok = asyncio.run(expiry(port, float(sys.argv[3])))
    elif mode == "urgent":
        ok = urgent(port, int(sys.argv[3]))
    else:
        ok = halfclose(port)
    sys.exit(0 if ok else 1)
