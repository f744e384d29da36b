# SPDX-License-Identifier: MIT
"""Writes the seed corpus of tests/fuzz/copier_fuzz.cpp into tests/fuzz/corpus: one input per route
(user space, relay, direct, sendfile, copy_file_range) and per kind of event (urgent data, a peer
that goes away, a reset, stop(), refused options, faults). The input format is the one decode() and
play() read in copier_fuzz.cpp; keep the two in step. Files named finding-* are inputs with which
the fuzzer found a bug (tests/fuzz_findings_linux_test.cpp); they are kept as they are.
Run: python3 tests/fuzz/make_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Kinds of ends (copier_fuzz.cpp: enum kind).
TCP, TCP_SMALL, UNIX, UNIX_SMALL, PIPE, PIPE_SMALL, SHM_FILE, DISK_FILE = range(8)
# Flags.
USERSPACE, FROM_UNIX, SIGPIPE_IGNORED, OOBINLINE, OUTER_SCOPE, APPEND = 1, 2, 4, 8, 16, 32
# Indexes into sizes[] (copier_fuzz.cpp), for give() and take().
SIZES = [1, 2, 3, 7, 64, 100, 1000, 4095, 4096, 4097, 16384, 65535, 65536, 65537, 262144, 1 << 20]


def header(src, dst, flags=0, buffer=0, max_splice=0, max_advance=0, splice_after=2, small_splice=0,
           pool=0, limit_class=0, limit=0, file_size=0, file_start=0, prefix=0, rate=0, seed=1,
           faults=(), blocking=None):
    k0, k1 = src, dst
    if blocking is not None:  # "src" or "dst": that end made blocking
        k0 |= 0x80
        flags |= 0xC0
        k1 |= 0x80 if blocking == "dst" else 0
    out = bytes([k0, k1, flags, buffer, max_splice, max_advance,
                 splice_after | small_splice << 2 | pool << 5, limit_class])
    out += struct.pack("<H", limit)
    out += bytes([file_size | file_start << 4 | prefix << 6, rate, seed, len(faults)])
    for call, kind in faults:
        out += struct.pack("<HB", call, kind)
    return out


# Script steps (copier_fuzz.cpp: play()).
def give(size):
    return bytes([5 | SIZES.index(size) << 4])


ADVANCE, UNTIL_WAIT, TAKE_ALL, END_SRC, RESET_SRC, URGENT = b"\x00", b"\x0e", b"\x09", b"\x0a", b"\x0b", b"\x07"
STOP = bytes([13 | 15 << 4])


def away(how):  # 0 close, 1 read all then close, 2 reset, 3 read all then reset
    return bytes([12 | how << 4])


def take(size):
    return bytes([8 | SIZES.index(size) << 4])


STREAM = give(1000) + UNTIL_WAIT + TAKE_ALL + give(4096) + UNTIL_WAIT + take(1000) + give(65536) + UNTIL_WAIT
ENDED = STREAM + END_SRC + UNTIL_WAIT

SEEDS = {
    # Routes.
    "user-unix-to-unix": header(UNIX, UNIX) + ENDED,
    "user-userspace-tcp-to-tcp": header(TCP, TCP, USERSPACE) + ENDED,
    "relay-tcp-to-tcp-large-pipes": header(TCP, TCP, pool=1) + ENDED,
    "relay-tcp-small-to-tcp-small": header(TCP_SMALL, TCP_SMALL) + ENDED,
    "relay-tcp-to-disk-file": header(TCP, DISK_FILE) + ENDED,
    "relay-unix-to-tcp-from-unix": header(UNIX, TCP, FROM_UNIX) + ENDED,
    "relay-no-pipe-to-give": header(TCP, TCP, pool=2) + ENDED,
    "relay-pool-budget-shrinks-pipes": header(TCP, TCP, pool=3) + ENDED,
    "relay-adaptive-small-splices": header(TCP, TCP, splice_after=1, small_splice=6)
    + (give(100) + UNTIL_WAIT) * 10 + give(65536) + UNTIL_WAIT + TAKE_ALL + give(65536) + UNTIL_WAIT + END_SRC,
    "direct-pipe-to-tcp": header(PIPE, TCP) + ENDED,
    "direct-pipe-to-unix": header(PIPE_SMALL, UNIX_SMALL) + ENDED,
    "direct-pipe-to-pipe": header(PIPE, PIPE_SMALL) + ENDED,
    "direct-tcp-to-pipe": header(TCP, PIPE) + ENDED,
    "direct-shm-file-to-pipe": header(SHM_FILE, PIPE, file_size=12) + UNTIL_WAIT + TAKE_ALL + UNTIL_WAIT,
    "direct-pipe-to-disk-file": header(PIPE, DISK_FILE, prefix=2) + ENDED,
    "sendfile-shm-file-to-tcp": header(SHM_FILE, TCP, file_size=14, file_start=2) + UNTIL_WAIT + TAKE_ALL,
    "sendfile-disk-file-to-unix": header(DISK_FILE, UNIX_SMALL, file_size=10) + UNTIL_WAIT + TAKE_ALL,
    "copy-range-shm-to-shm": header(SHM_FILE, SHM_FILE, file_size=13, file_start=1) + UNTIL_WAIT,
    "copy-range-shm-to-disk-exdev": header(SHM_FILE, DISK_FILE, file_size=12, prefix=1) + UNTIL_WAIT,
    "user-append-to-disk-file": header(DISK_FILE, DISK_FILE, APPEND, file_size=9, prefix=3) + UNTIL_WAIT,
    # TCP urgent data.
    "urgent-tcp-to-tcp": header(TCP, TCP) + give(1000) + URGENT + give(1000) + UNTIL_WAIT + URGENT + URGENT
    + give(100) + UNTIL_WAIT + URGENT + END_SRC,
    "urgent-oobinline-tcp-to-pipe": header(TCP, PIPE, OOBINLINE) + give(100) + URGENT + give(100) + UNTIL_WAIT + END_SRC,
    "urgent-userspace-limit-at-mark": header(TCP, UNIX, USERSPACE, limit_class=2, limit=5)
    + give(3) + URGENT + give(1000) + UNTIL_WAIT,
    # Peers that go away.
    "dst-closed-tcp": header(TCP, TCP) + give(65536) + UNTIL_WAIT + take(4096) + away(0) + give(65536) + UNTIL_WAIT,
    "dst-reset-tcp-sendfile": header(SHM_FILE, TCP, file_size=15) + UNTIL_WAIT + away(3) + UNTIL_WAIT,
    "dst-closed-pipe-sigpipe": header(PIPE, PIPE_SMALL) + give(65536) + UNTIL_WAIT + away(1) + UNTIL_WAIT,
    "dst-closed-unix-user": header(UNIX, UNIX, OUTER_SCOPE) + give(1000) + UNTIL_WAIT + away(1) + give(1000) + UNTIL_WAIT,
    "src-reset-tcp": header(TCP, TCP) + give(4096) + ADVANCE + give(4096) + RESET_SRC + UNTIL_WAIT,
    "stop-with-bytes-held": header(TCP, TCP_SMALL) + give(262144) + UNTIL_WAIT + STOP + UNTIL_WAIT,
    # Options and limits.
    "options-refused": header(TCP, TCP, buffer=1) + give(100) + UNTIL_WAIT,
    "limit-zero": header(PIPE, PIPE, limit_class=1) + give(100) + UNTIL_WAIT,
    "limit-around-small-pipe": header(TCP, TCP, limit_class=5, limit=2) + give(65536) + UNTIL_WAIT + TAKE_ALL + UNTIL_WAIT,
    "limit-around-buffer": header(UNIX, UNIX, limit_class=4, limit=0, buffer=5) + give(65536) + UNTIL_WAIT + TAKE_ALL,
    "one-byte-moves": header(TCP, TCP_SMALL, buffer=2, max_splice=2, max_advance=2) + give(1000) + UNTIL_WAIT + END_SRC,
    "blocking-src-refused": header(PIPE, TCP, blocking="src") + give(100) + UNTIL_WAIT,
    "blocking-dst-refused": header(TCP, UNIX, blocking="dst") + give(100) + UNTIL_WAIT,
    "sigpipe-ignored-option": header(PIPE, PIPE, SIGPIPE_IGNORED) + give(1000) + UNTIL_WAIT + away(0) + give(7) + UNTIL_WAIT,
    # Faults through the seam: EINVAL on an early call (a fallback), EAGAIN and short counts at random.
    "faults-fallback-and-random": header(TCP, TCP, rate=40, seed=7, faults=((6, 5 + 3), (9, 2), (12, 3)))
    + ENDED,
    "faults-copy-range-exdev": header(SHM_FILE, SHM_FILE, file_size=12, faults=((6, 5 + 5),)) + UNTIL_WAIT,
    "faults-terminal-error": header(PIPE, TCP, faults=((8, 5 + 0),)) + ENDED,
    # Calls 0-3 learn the ends, 4-5 make the pipe, 6 drains src into it: EINVAL on 7, the splice
    # into dst, has the pipe's bytes read back into the buffer.
    "faults-dst-refuses-splice": header(TCP, TCP, faults=((7, 5 + 3),)) + ENDED,
}


def main():
    os.makedirs(CORPUS, exist_ok=True)
    for name in os.listdir(CORPUS):
        if not name.startswith("finding-"):  # inputs the fuzzer found a bug with stay
            os.remove(os.path.join(CORPUS, name))
    for name, data in SEEDS.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {CORPUS}")


if __name__ == "__main__":
    main()
