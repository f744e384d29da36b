#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mirror listeners for tests/e2e/mirror.sh, on 127.0.0.1, in one process:
- keep: reads each connection until end of file, then prints "got LENGTH SHA256" and closes.
- stall: accepts with a tiny receive buffer and never reads; keeps the connections open.
Prints "keep PORT" and "stall PORT", then serves until killed.
"""
import hashlib
import socket
import sys
import threading


def keep(conn):
    h, n = hashlib.sha256(), 0
    while data := conn.recv(1 << 20):
        h.update(data)
        n += len(data)
    print(f"got {n} {h.hexdigest()}", flush=True)
    conn.close()


def serve(listener, handler):
    held = []
    while True:
        conn, _ = listener.accept()
        if handler:
            threading.Thread(target=handler, args=(conn,), daemon=True).start()
        else:
            held.append(conn)


def listener(rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited by accepted sockets
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


k, st = listener(), listener(4096)
print("keep", k.getsockname()[1])
print("stall", st.getsockname()[1], flush=True)
threading.Thread(target=serve, args=(st, None), daemon=True).start()
serve(k, keep)
