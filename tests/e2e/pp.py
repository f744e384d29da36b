#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PROXY protocol peers for proxy_protocol.sh, all on 127.0.0.1.

  pp.py serve DIR          an upstream that expects a v2 header, records it, then echoes every
                           byte; prints "echo PORT". DIR/upstream.log gets "accepted N" for each
                           connection as it is accepted and "header N HEX" once its header is read.
  pp.py bulk PORT FILE     a v1 header, then FILE, while reading the echo; checks what came back is
                           FILE, byte for byte (sha256).
  pp.py bytewise PORT      a v1 header one byte at a time (TCP_NODELAY, a segment each), then
                           "hello"; expects "hello" back.
  pp.py hostile PORT MODE...  one client per MODE, all at once: bad (a v1 header with address
                           999.1.1.1), garbage (an HTTP request), incomplete (the start of a v1
                           header, then silence), silent (nothing); each waits for the proxy to
                           close and prints "MODE: closed after S s ok|FAIL": ok when closed within
                           2 s, and for incomplete and silent not before 0.8 s (the --proxy-timeout
                           1 deadline). Exit 0 when all are ok.
  pp.py tlv PORT           a v2 header from 198.51.100.9:40002 with an AUTHORITY TLV
                           "pp.example", then an HTTP/1.0 request; prints the response body.
  pp.py free N             prints N free TCP ports.
"""
import asyncio
import hashlib
import os
import socket
import struct
import sys
import threading
import time

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V1 = b"PROXY TCP4 198.51.100.7 192.0.2.1 40001 443\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


async def serve(dirname):
    log = open(os.path.join(dirname, "upstream.log"), "a", buffering=1)
    count = 0

    async def one(reader, writer):
        nonlocal count
        count += 1
        n = count
        log.write(f"accepted {n}\n")
        try:
            fixed = await reader.readexactly(16)
            rest = await reader.readexactly(struct.unpack("!H", fixed[14:16])[0]) if fixed[:12] == V2_SIG else b""
            log.write(f"header {n} {(fixed + rest).hex()}\n")
            while data := await reader.read(1 << 20):
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(one, "127.0.0.1", 0)
    print("echo", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


def bulk(port, path):
    data = open(path, "rb").read()
    s = connect(port)

    def send():
        s.sendall(V1 + data)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    h, n = hashlib.sha256(), 0
    while chunk := s.recv(1 << 20):
        h.update(chunk)
        n += len(chunk)
    t.join()
    ok = n == len(data) and h.digest() == hashlib.sha256(data).digest()
    print(f"sent {len(data)} bytes, received {n}, {'equal' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


def bytewise(port):
    s = connect(port)
    for b in V1:
        s.send(bytes([b]))
        time.sleep(0.01)
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := s.recv(100):
        got += chunk
    print(f"{len(V1)} header bytes one at a time; echo {got!r}")
    return 0 if got == b"hello" else 1


def hostile_one(port, mode):
    sends = {"bad": b"PROXY TCP4 999.1.1.1 192.0.2.1 40001 443\r\n", "garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
             "incomplete": b"PROXY TCP4 198.51.100.7 ", "silent": b""}[mode]
    s = connect(port)
    s.settimeout(3)
    start = time.monotonic()
    s.sendall(sends)
    try:
        while s.recv(100):
            pass
    except socket.timeout:
        return f"{mode}: still open after 3 s FAIL"
    except ConnectionError:
        pass
    took = time.monotonic() - start
    timed = mode in ("incomplete", "silent")
    ok = took <= 2 and (not timed or took >= 0.8)
    return f"{mode}: closed after {took:.2f} s {'ok' if ok else 'FAIL'}"


def hostile(port, modes):
    results = {}
    threads = [threading.Thread(target=lambda m=m: results.__setitem__(m, hostile_one(port, m))) for m in modes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in modes:
        print(results[m])
    return 0 if all(r.endswith(" ok") for r in results.values()) else 1


def tlv(port):
    authority = b"pp.example"
    tlvs = bytes([0x02]) + struct.pack("!H", len(authority)) + authority
    addrs = socket.inet_aton("198.51.100.9") + socket.inet_aton("192.0.2.1") + struct.pack("!HH", 40002, 80)
    header = V2_SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs) + len(tlvs)) + addrs + tlvs
    s = connect(port)
    s.sendall(header + b"GET / HTTP/1.0\r\nHost: pp.example\r\n\r\n")
    got = b""
    while chunk := s.recv(4096):
        got += chunk
    print(got.partition(b"\r\n\r\n")[2].decode(errors="replace").strip())
    return 0


def free(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    return 0


cmd = sys.argv[1]
if cmd == "serve":
    asyncio.run(serve(sys.argv[2]))
elif cmd == "bulk":
    sys.exit(bulk(int(sys.argv[2]), sys.argv[3]))
elif cmd == "bytewise":
    sys.exit(bytewise(int(sys.argv[2])))
elif cmd == "hostile":
    sys.exit(hostile(int(sys.argv[2]), sys.argv[3:]))
elif cmd == "tlv":
    sys.exit(tlv(int(sys.argv[2])))
elif cmd == "free":
    sys.exit(free(int(sys.argv[2])))
sys.exit(f"unknown command {cmd}")
