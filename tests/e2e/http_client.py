#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Raw HTTP/1.1 clients for the file server's end-to-end test, on 127.0.0.1:PORT.

usage: http_client.py pipeline PORT ROOT   several requests in one write, answers checked in order
       http_client.py bad PORT              malformed request lines answered 400, then closed
       http_client.py abort PORT PATH SIZE SENT [rst]
                                            a PUT of SIZE bytes that sends SENT and leaves (FIN, or RST)
Exits 0 when every check passes, and prints one line per failed check.
"""
import os
import socket
import struct
import sys


def read_response(sock, buf, head_only=False):
    """Reads one response from sock (bytes already received are in buf[0]); returns (status line,
    headers, body). Raises EOFError when the connection closes first."""
    while b"\r\n\r\n" not in buf[0]:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed before a response head")
        buf[0] += chunk
    head, buf[0] = buf[0].split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if lines[0].split(" ")[1] == "100":
        return read_response(sock, buf, head_only)
    length = 0 if head_only else int(headers.get("content-length", "0"))
    while len(buf[0]) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed inside a body")
        buf[0] += chunk
    body, buf[0] = buf[0][:length], buf[0][length:]
    return lines[0], headers, body


def request(method, path, body=b"", extra=""):
    head = f"{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}"
    if method == "PUT":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


def pipeline(port, root):
    small = open(os.path.join(root, "k4.bin"), "rb").read()
    big_body = os.urandom(300_000)  # starts in the server's head buffer, ends in splice::copy
    tiny_body = os.urandom(1000)    # wholly inside the head buffer, with the next request behind it
    steps = [  # (request, expected status, expected body or None, HEAD?)
        (request("GET", "/k4.bin"), 200, small, False),
        (request("HEAD", "/k4.bin"), 200, b"", True),
        (request("PUT", "/pipe-tiny.bin", tiny_body), 201, None, False),
        (request("GET", "/pipe-tiny.bin"), 200, tiny_body, False),
        (request("GET", "/missing.bin"), 404, None, False),
        (request("PUT", "/pipe-big.bin", big_body), 201, None, False),
        (request("GET", "/empty.bin"), 200, b"", False),
        (request("PUT", "/pipe-zero.bin", b""), 201, None, False),
        (request("GET", "/pipe-zero.bin"), 200, b"", False),
        (request("GET", "/pipe-big.bin"), 200, big_body, False),
        (request("GET", "/one.bin", extra="Connection: close\r\n"), 200,
         open(os.path.join(root, "one.bin"), "rb").read(), False),
    ]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"".join(s[0] for s in steps))
    buf, bad = [b""], 0
    for i, (_, status, body, head) in enumerate(steps):
        try:
            line, headers, got = read_response(sock, buf, head)
        except EOFError as e:
            print(f"answer {i}: {e}")
            return False
        if not line.startswith(f"HTTP/1.1 {status} "):
            print(f"answer {i}: {line!r}, expected {status}")
            bad += 1
        elif body is not None and got != body:
            print(f"answer {i}: body of {len(got)} bytes differs from the {len(body)} expected")
            bad += 1
        elif head and int(headers.get("content-length", -1)) != len(small):
            print(f"answer {i}: HEAD says Content-Length {headers.get('content-length')}")
            bad += 1
    rest = buf[0] + sock.recv(65536)
    if rest:
        print(f"{len(rest)} bytes after the last answer, which asked to close")
        bad += 1
    print(f"pipeline: {len(steps) - bad} passed, {bad} failed")
    return bad == 0


def bad_requests(port):
    cases = [b"GARBAGE\r\n\r\n", b"GET /k4.bin HTTP/1.1 extra\r\n\r\n", b"GET k4.bin HTTP/1.1\r\n\r\n",
             b"GET /k4.bin HTTP/x.y\r\n\r\n", b"GET /k4.bin\n\n", b"GET /k4.bin HTTP/1.1\r\nno colon\r\n\r\n",
             b"GET /k4.bin HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"]
    bad = 0
    for raw in cases:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(raw)
        got = b""
        while chunk := sock.recv(65536):  # the server must close after a 400
            got += chunk
        line = got.split(b"\r\n", 1)[0]
        if line != b"HTTP/1.1 400 Bad Request":
            print(f"{raw!r} answered {line!r}")
            bad += 1
        sock.close()
    print(f"bad requests: {len(cases) - bad} passed, {bad} failed")
    return bad == 0


def abort(port, path, size, sent, rst):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {size}\r\n\r\n".encode())
    sock.sendall(os.urandom(sent))
    if rst:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return True


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "pipeline":
        ok = pipeline(port, sys.argv[3])
    elif mode == "bad":
        ok = bad_requests(port)
    else:
        ok = abort(port, sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), len(sys.argv) > 6)
    sys.exit(0 if ok else 1)
