#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""End-to-end clients that go through a proxy on 127.0.0.1:PORT.

usage: clients.py echo PORT CONNECTIONS   many connections at once, random payloads, each echoed back whole
       clients.py halfclose PORT         send, shut the write side, then receive the whole answer
Exits 0 when every byte checks out.
"""
import asyncio
import hashlib
import os
import socket
import sys


async def one_echo(port, i):
    payload = os.urandom(1000 + (i * 7919) % 200000)
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
    ok = asyncio.run(echo(port, int(sys.argv[3]))) if mode == "echo" else halfclose(port)
    sys.exit(0 if ok else 1)
