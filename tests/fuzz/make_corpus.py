#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target, one directory per target
under tests/fuzz/corpus/ (named as the target without "fuzz_"):

  decode        one valid MQTT packet (or stream) per file. Most are the
                bytes spelled out field by field in
                tests/unit/core/packet_encode_test.cpp and
                packet_decode_test.cpp; the *_all_properties seeds are
                Encode() output for v5 packets carrying every property they
                allow.
  proxy_header  PROXY protocol v1 and v2 headers (tests/unit/core/
                proxy_protocol_test.cpp), some with the MQTT bytes after them.
  websocket     an upgrade request and client frames (masked, as a client
                must send them), as tests/unit/core/websocket_test.cpp does.

scripts/test.sh (stage fuzz) checks that every target has its directory.
Run from anywhere: python3 tests/fuzz/make_corpus.py
"""

import pathlib

DECODE_SEEDS = {
    "connect_v311": "10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64",
    "connect_v311_will_user_password":
        "10 1B 00 04 4D 51 54 54 04 EC 00 0A 00 01 63 00 01 77 00 03 62 79 65"
        " 00 01 75 00 01 70",
    "connect_v31": "10 0F 00 06 4D 51 49 73 64 70 03 02 00 00 00 01 63",
    "connect_v311_bridge": "10 0D 00 04 4D 51 54 54 84 02 00 3C 00 01 62",
    "connect_v5_properties_will":
        "10 25 00 04 4D 51 54 54 05 86 00 1E 08 11 00 00 00 78 21 00 14 00 01 63"
        " 05 18 00 00 00 05 00 01 77 00 01 78 00 01 75",
    "connack_v5_properties": "20 0C 00 00 09 12 00 01 61 22 00 0A 24 01",
    "publish_qos1_retain_dup": "3B 09 00 03 61 2F 62 00 0A 68 69",
    "publish_v5_subscription_ids_alias":
        "32 0F 00 01 74 00 01 08 0B 01 0B C8 01 23 00 03 70",
    "puback_v5_reason_string": "40 09 12 34 00 05 1F 00 02 6E 6F",
    "pubrel": "62 02 12 34",
    "subscribe_v311": "82 0C 00 01 00 03 61 2F 23 01 00 01 62 02",
    "subscribe_v5_options": "82 09 00 02 02 0B 05 00 01 78 2D",
    "suback_v5": "90 09 00 01 04 1F 00 01 78 00 87",
    "unsubscribe_v5": "A2 0A 00 03 00 00 01 61 00 02 62 63",
    "unsuback_v5": "B0 05 00 03 00 00 11",
    "disconnect_v5_session_expiry": "E0 07 00 05 11 00 00 00 00",
    "auth_v5": "F0 06 18 04 15 00 01 6D",
    "connect_v5_all_properties":
        "10 5D 00 04 4D 51 54 54 05 F4 00 3C 23 11 00 00 0E 10 15 00 01 6D 16 00 01 64"
        " 17 00 19 01 21 00 0A 22 00 05 26 00 01 6B 00 01 76 27 00 00 10 00 00 01 63 1F"
        " 01 01 02 00 00 00 09 03 00 01 74 08 00 01 72 09 00 01 63 18 00 00 00 03 26 00"
        " 01 6B 00 01 76 00 01 77 00 01 78 00 01 75 00 01 70",
    "connack_v5_all_properties":
        "20 37 00 00 34 11 00 00 00 00 12 00 01 61 13 00 1E 1A 00 01 69 1C 00 01 73 1F"
        " 00 01 72 21 00 14 22 00 04 24 01 25 01 26 00 01 6B 00 01 76 27 00 00 03 E8 28"
        " 01 29 01 2A 00",
    "publish_v5_all_properties":
        "3D 2F 00 03 61 2F 62 00 09 22 01 01 02 00 00 00 3C 03 00 01 74 08 00 01 72 09"
        " 00 01 63 0B 03 0B AC 02 23 00 02 26 00 01 6B 00 01 76 68 65 6C 6C 6F",
    "stream_publish_pingreq_disconnect": "30 07 00 03 61 2F 62 68 69 C0 00 E0 00",
}


def remaining_length(n: int) -> bytes:
    """MQTT's remaining length: a variable byte integer, 7 bits a byte."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_v311(client_id: bytes) -> bytes:
    """A 3.1.1 CONNECT (clean session, keep alive 60) for `client_id`."""
    body = (bytes.fromhex("00 04 4D 51 54 54 04 02 00 3C")
            + len(client_id).to_bytes(2, "big") + client_id)
    return b"\x10" + remaining_length(len(body)) + body


assert connect_v311(b"cid").hex(" ").upper() == DECODE_SEEDS["connect_v311"]
assert remaining_length(140) == bytes.fromhex("8C 01")


PROXY_HEADER_SEEDS = {
    "v1_tcp4": b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 1883\r\n".hex() + "10",
    "v1_tcp6": b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 0\r\n".hex(),
    "v1_unknown": b"PROXY UNKNOWN\r\n".hex(),
    "v2_local": "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 20 00 00 00",
    # PROXY, TCP over IPv4: 203.0.113.7:51234 -> 192.0.2.1:1883.
    "v2_tcp4": "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 21 11 00 0C CB 00 71 07 C0 00 02 01"
               " C8 22 07 5B",
    # PROXY, TCP over IPv6: 2001:db8::7:51234 -> 2001:db8::1:1883.
    "v2_tcp6": "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 21 21 00 24"
               " 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 07"
               " 20 01 0D B8 00 00 00 00 00 00 00 00 00 00 00 01 C8 22 07 5B",
    # PROXY, TCP over IPv4 with a TLV (PP2_TYPE_AUTHORITY "h"), then CONNECT.
    "v2_tcp4_tlv_then_connect":
        "0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A 21 11 00 10 CB 00 71 07 C0 00 02 01"
        " C8 22 07 5B 02 00 01 68 10 0F 00 04 4D 51 54 54 04 02 00 3C 00 03 63 69 64",
}

UPGRADE = (b"GET /mqtt HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
MASK = bytes.fromhex("37 FA 21 3D")


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> str:
    """A masked client frame (RFC 6455 section 5.2), as hex."""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([0x80 | len(payload)])
    else:
        head += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return (head + MASK + masked).hex()


WEBSOCKET_SEEDS = {
    "upgrade": UPGRADE.hex(),
    "binary_hello": client_frame(0x2, b"Hello"),
    "close": client_frame(0x8, b"\x03\xe8"),
    "fragmented_with_ping": client_frame(0x2, b"\xc0", fin=False) + client_frame(0x9, b"hi")
                            + client_frame(0x0, b"\x00"),
    # A CONNECT in a frame of 126+ bytes (16-bit length): remaining length
    # 140, two bytes (8C 01).
    "binary_connect_long": client_frame(0x2, connect_v311(b"c" * 128)),
    "upgrade_then_connect": (UPGRADE + bytes.fromhex(client_frame(
        0x2, bytes.fromhex(DECODE_SEEDS["connect_v311"])))).hex(),
}

CORPORA = {
    "decode": DECODE_SEEDS,
    "proxy_header": PROXY_HEADER_SEEDS,
    "websocket": WEBSOCKET_SEEDS,
}


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent / "corpus"
    for target, seeds in CORPORA.items():
        out = root / target
        out.mkdir(parents=True, exist_ok=True)
        for name, hex_bytes in seeds.items():
            (out / name).write_bytes(bytes.fromhex(hex_bytes))


if __name__ == "__main__":
    main()
