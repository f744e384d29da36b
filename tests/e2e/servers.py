#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Upstream servers for the end-to-end tests, all on 127.0.0.1, in one process:
- HTTP: GET /<file> from DIR; PUT answers with the sha256 of the body it received.
- echo: sends back every byte, and half-closes when the client does.
- answer-after-eof: reads until end of file, then sends the sha256 of what it read, 1 MiB times 4.
- sink: reads until end of file with a plain read loop, then answers "LENGTH SHA256\n" and closes.
Prints "http PORT", "echo PORT", "eof PORT", "sink PORT" and then serves until killed.

usage: servers.py DIR
"""
import asyncio
import hashlib
import http.server
import os
import sys
import threading


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=sys.argv[1], **kw)

    def log_message(self, *a):
        pass

    def do_PUT(self):
        left = int(self.headers["Content-Length"])
        h = hashlib.sha256()
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        body = h.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that vanish mid-download are part of the tests


async def echo(reader, writer):
    while data := await reader.read(1 << 16):
        writer.write(data)
        await writer.drain()
    writer.write_eof()
    await writer.drain()
    writer.close()


async def answer_after_eof(reader, writer):
    h = hashlib.sha256()
    while data := await reader.read(1 << 16):
        h.update(data)
    digest = h.digest()
    for _ in range(4):
        writer.write(digest * (1 << 15))  # 1 MiB
        await writer.drain()
    writer.close()


async def sink(reader, writer):
    h, n = hashlib.sha256(), 0
    while data := await reader.read(1 << 20):
        h.update(data)
        n += len(data)
    writer.write(f"{n} {h.hexdigest()}\n".encode())
    await writer.drain()
    writer.close()


async def main():
    web = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    e = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=1024)
    f = await asyncio.start_server(answer_after_eof, "127.0.0.1", 0)
    s = await asyncio.start_server(sink, "127.0.0.1", 0)
    print("http", web.server_address[1])
    print("echo", e.sockets[0].getsockname()[1])
    print("eof", f.sockets[0].getsockname()[1])
    print("sink", s.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
