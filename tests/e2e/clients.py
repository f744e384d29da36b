#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end clients that go through a proxy on 127.0.0.1:PORT.

usage: clients.py echo PORT CONNECTIONS   many connections at once, random payloads, each echoed back whole
       clients.py halfclose PORT         send, shut the write side, then receive the whole answer
       clients.py soak PORT SECONDS N    N workers open, verify and close connections until SECONDS pass
Exits 0 when every byte checks out.
"""
import asyncio
import hashlib
import os
import random
import socket
import sys


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


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "echo":
        ok = asyncio.run(echo(port, int(sys.argv[3])))
    elif mode == "soak":
        ok = asyncio.run(soak(port, float(sys.argv[3]), int(sys.argv[4])))
    else:
        ok = halfclose(port)
    sys.exit(0 if ok else 1)
