#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Clients for tests/e2e/graceful.sh, through a proxy (or the file server) on 127.0.0.1:PORT.

usage: graceful.py upload PORT BYTES [N]   N connections (1) to servers.py's sink, each sending BYTES and
                                           checking the sink's "LENGTH SHA256" answer
       graceful.py echo PORT BYTES [N]     N connections to the echo server, each BYTES both ways, exact
       graceful.py hold PORT                one connection that sends 1 MiB and then holds it open; ends
                                           when the other side closes (exit 0) or after 60 s (exit 1)
       graceful.py refused PORT             a connection is refused (ECONNREFUSED)
       graceful.py idle PORT                one connection that sends nothing; ends when the server closes
Each prints "connected" once its connections are open, then one line of what it found; exit 0 when
every byte checks out.
"""
import asyncio
import hashlib
import os
import socket
import sys


def connected():
    print("connected", flush=True)


async def one_upload(port, n):
    data = os.urandom(n)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer, data


async def upload(port, n, conns):
    opened = await asyncio.gather(*(one_upload(port, n) for _ in range(conns)))
    connected()

    async def run(reader, writer, data):
        writer.write(data)
        await writer.drain()
        writer.write_eof()
        answer = (await reader.read(-1)).decode().strip()
        writer.close()
        return answer == f"{len(data)} {hashlib.sha256(data).hexdigest()}"

    results = await asyncio.gather(*(run(*o) for o in opened))
    print(f"upload: {results.count(True)} exact, {results.count(False)} not")
    return all(results)


async def echo(port, n, conns):
    opened = await asyncio.gather(*(one_upload(port, n) for _ in range(conns)))
    connected()

    async def run(reader, writer, data):
        async def send():
            writer.write(data)
            await writer.drain()
            writer.write_eof()
        sender = asyncio.create_task(send())
        got = await reader.read(-1)
        await sender
        writer.close()
        return got == data

    results = await asyncio.gather(*(run(*o) for o in opened))
    print(f"echo: {results.count(True)} exact, {results.count(False)} not")
    return all(results)


def hold(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(os.urandom(1 << 20))
    connected()
    s.settimeout(60)
    try:
        while s.recv(1 << 16):
            pass
    except socket.timeout:
        print("hold: still open after 60 s")
        return False
    except OSError:
        pass
    print("hold: closed by the other side")
    return True


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        print("refused: yes")
        return True
    except OSError as e:
        print(f"refused: {e}")
        return False
    print("refused: no, the connection was accepted")
    return False


def idle(port):
    s = socket.create_connection(("127.0.0.1", port))
    connected()
    s.settimeout(60)
    try:
        got = s.recv(1)
    except OSError as e:
        got = str(e).encode()
    print(f"idle: closed ({got!r})")
    return got == b""


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "upload":
        ok = asyncio.run(upload(port, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1))
    elif mode == "echo":
        ok = asyncio.run(echo(port, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1))
    elif mode == "hold":
        ok = hold(port)
    elif mode == "refused":
        ok = refused(port)
    elif mode == "idle":
        ok = idle(port)
    else:
        sys.exit(__doc__)
    sys.exit(0 if ok else 1)


main()
