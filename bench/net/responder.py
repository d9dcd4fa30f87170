#!/usr/bin/env python3
"""Minimal loopback DNS responder for the network benchmark: answers every A query with
127.0.0.1 (TTL 0) and everything else with an empty NOERROR answer. UDP only. Usage:
responder.py ADDR PORT"""
import socket
import struct
import sys


def answer(q: bytes) -> bytes:
    qid, _flags, qd = struct.unpack("!HHH", q[:6])
    end = 12
    while q[end] != 0:
        end += q[end] + 1
    question = q[12:end + 5]
    qtype = struct.unpack("!H", q[end + 1:end + 3])[0]
    an = 1 if qtype == 1 and qd == 1 else 0
    head = struct.pack("!HHHHHH", qid, 0x8180, 1, an, 0, 0)
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 0, 4) + bytes([127, 0, 0, 1]) if an else b""
    return head + question + rr


def main() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    while True:
        q, peer = s.recvfrom(4096)
        try:
            s.sendto(answer(q), peer)
        except (IndexError, struct.error):
            pass


if __name__ == "__main__":
    main()
