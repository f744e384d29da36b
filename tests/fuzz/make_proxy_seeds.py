# SPDX-License-Identifier: MIT
"""Writes the seed corpus of tests/fuzz/proxy_header_fuzz.cpp into tests/fuzz/proxy_corpus: v1
lines of each protocol, v2 headers of each family and command with TLVs and a CRC32C, and a few
near misses. Input format (proxy_header_fuzz.cpp): an options byte, a seed byte, the stream.
Run: python3 tests/fuzz/make_proxy_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "proxy_corpus")
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def tlv(kind, value):
    return struct.pack(">BH", kind, len(value)) + value


def v2(command, family, addresses, tlvs=b"", crc=False):
    body = addresses + tlvs + (tlv(0x03, b"\0\0\0\0") if crc else b"")
    head = SIG + bytes([command, family]) + struct.pack(">H", len(body))
    out = head + body
    if crc:
        out = out[:-4] + struct.pack(">I", crc32c(out))
    return out


def main():
    os.makedirs(CORPUS, exist_ok=True)
    inet = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 443)
    inet6 = bytes(range(16)) + bytes(range(16, 32)) + struct.pack(">HH", 1, 65535)
    unix = b"/run/a.sock".ljust(108, b"\0") + b"\0abstract".ljust(108, b"\0")
    tlvs = tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x20, b"\x01\0\0\0\0" + tlv(0x21, b"TLSv1.3"))
    seeds = {
        "v1-tcp4": b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n",
        "v1-tcp6": b"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n",
        "v1-unknown": b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::1 65535 65535\r\n",
        "v1-bad-address": b"PROXY TCP4 999.1.1.1 1.2.3.4 1 2\r\n",
        "v2-inet-crc": v2(0x21, 0x11, inet, tlvs, crc=True) + b"payload",
        "v2-inet6": v2(0x21, 0x21, inet6, tlv(0x05, b"id-1234")),
        "v2-unix-crc": v2(0x21, 0x31, unix, crc=True),
        "v2-local": v2(0x20, 0x00, b"", tlv(0x04, b"\0" * 8)),
        "v2-unspec": v2(0x21, 0x00, b""),
        "v2-overrun": v2(0x21, 0x11, inet, b"\x01\x00\x09ab"),
        "not-a-header": b"SSH-2.0-OpenSSH_9.2\r\n",
    }
    for i, (name, stream) in enumerate(sorted(seeds.items())):
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(bytes([0, i]) + stream)


if __name__ == "__main__":
    main()
