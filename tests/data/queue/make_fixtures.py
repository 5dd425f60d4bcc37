#!/usr/bin/env python3
"""Writes the bridge queue fixtures of this directory from the format in
src/bridge/queue_log.h, independently of the C++ code that reads them."""
import struct

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out

def publish_v5(topic, payload, retain=False):
    t = topic.encode()
    body = struct.pack(">H", len(t)) + t + varint(0) + payload  # no properties
    return bytes([0x30 | (1 if retain else 0)]) + varint(len(body)) + body

def record(body):
    return struct.pack(">II", len(body), crc32c(body)) + body

def message(seq, enqueued_ms, qos, topic, payload):
    body = b"\x01" + struct.pack(">QQQB", seq, enqueued_ms, 0, qos) + publish_v5(topic, payload)
    return record(body)

def head(h):
    return record(b"\x02" + struct.pack(">Q", h))

header = b"FERRYQ01" + struct.pack(">Q", 1)
good = header + head(1) + b"".join(
    message(s, 1700000000000 + s, 1, "sensor/%d" % s, b"reading %d" % s) for s in (1, 2, 3))
torn = message(4, 1700000000004, 1, "sensor/4", b"reading 4 that never finished")
with open("torn_tail.seg", "wb") as f:
    f.write(good + torn[:len(torn) // 2])
print("torn_tail.seg: %d good bytes, then %d bytes of a torn record" % (len(good), len(torn) // 2))
