#!/usr/bin/env python3
"""Raw MQTT 3.1.1 clients for bench/one_client.sh: what one misbehaving
client does to a broker.

  raw_clients.py stalled PORT TOPIC QOS
      connects (no keep alive), subscribes to TOPIC at QOS, prints "ready",
      then never reads again, a half-open subscriber, until it is killed.
  raw_clients.py partial PORT PID COUNT BYTES
      COUNT clients connect; each sends the header of a PUBLISH declaring
      1 MB, then BYTES bytes of it, and keeps the connection open. Prints
      JSON: the broker's (PID) VmRSS in kB before, while the partial packets
      are held, and after the clients closed; how many connections the
      broker closed meanwhile.
  raw_clients.py routes PORT COUNT CLIENTS
      CLIENTS clients subscribe COUNT topic filters in all (QoS 0), half
      exact topics (r/<i>/x/y/z), half five-level wildcards (w/<i>/+/y/#),
      print "ready" once every SUBACK is in, and stay connected until
      standard input closes: a node with COUNT routes.
  raw_clients.py sessions PORT COUNT
      COUNT clients connect without clean session (ids session-<i>), one
      after another, and leave at once: a node with COUNT offline sessions.
      Prints "ready".
  raw_clients.py takeover PORT_A PORT_B PUB_PORT COUNT ROUNDS
      A client with a persistent session (id roamer) subscribes to
      takeover/# at QoS 1 on PORT_A and leaves. Then, ROUNDS times: a
      publisher on PUB_PORT publishes COUNT QoS 1 messages, each
      acknowledged, while the client is away; the client reconnects, to
      PORT_B and PORT_A in turn, and takes them all. Prints JSON: the time
      from its CONNECT to its CONNACK and to the last of the COUNT
      messages, per round (ms), and how many were missing or repeated.
"""
import json
import select
import socket
import sys
import time

MB = 1024 * 1024


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect(port, client_id, clean=True):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Protocol name, level 4, clean session (or not), keep alive 0.
    flags = 0x02 if clean else 0x00
    body = utf8("MQTT") + bytes([4, flags, 0, 0]) + utf8(client_id)
    s.sendall(packet(0x10, body))
    ack = recv_exactly(s, 4)
    if ack[0] != 0x20 or ack[3] != 0:
        raise SystemExit(f"{client_id}: CONNACK {ack.hex()}")
    return s


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise SystemExit("connection closed by the broker")
        data += chunk
    return data


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def settled_rss(pid, timeout=10.0):
    """VmRSS once it has not changed for half a second (or at the timeout)."""
    last, since, deadline = rss_kb(pid), time.time(), time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.1)
        now = rss_kb(pid)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= 0.5:
            break
    return last


def routes(port, count, nclients):
    clients = [connect(port, f"routes-{c}") for c in range(nclients)]
    per_packet = 500
    pid = 1
    for c, s in enumerate(clients):
        lo, hi = c * count // nclients, (c + 1) * count // nclients
        pending = 0
        for start in range(lo, hi, per_packet):
            body = bytearray((pid % 65535 + 1).to_bytes(2, "big"))
            pid += 1
            for i in range(start, min(hi, start + per_packet)):
                f = f"r/{i}/x/y/z" if i % 2 == 0 else f"w/{i}/+/y/#"
                body += utf8(f) + b"\x00"
            s.sendall(packet(0x82, bytes(body)))
            pending += 1
        # SUBACKs: type byte, remaining length (varint), packet id, codes.
        while pending:
            recv_exactly(s, 1)
            length, mult = 0, 1
            while True:
                b = recv_exactly(s, 1)[0]
                length += (b & 0x7F) * mult
                mult *= 128
                if not b & 0x80:
                    break
            recv_exactly(s, length)
            pending -= 1
    print("ready", flush=True)
    sys.stdin.read()


def sessions(port, count):
    for i in range(count):
        s = connect(port, f"session-{i}", clean=False)
        s.sendall(packet(0xE0, b""))  # DISCONNECT: the session stays
        s.close()
    print("ready", flush=True)


class Reader:
    """MQTT packets from a socket: (first byte, body)."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def packet(self):
        while True:
            if len(self.buf) >= 2:
                length, mult, i = 0, 1, 1
                while i < len(self.buf):
                    b = self.buf[i]
                    length += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(self.buf) >= i + length:
                            first, body = self.buf[0], self.buf[i:i + length]
                            self.buf = self.buf[i + length:]
                            return first, body
                        break
            chunk = self.s.recv(1 << 16)
            if not chunk:
                raise SystemExit("connection closed by the broker")
            self.buf += chunk


def takeover(port_a, port_b, pub_port, count, rounds):
    s = connect(port_a, "roamer", clean=False)
    s.sendall(packet(0x82, (1).to_bytes(2, "big") + utf8("takeover/#") + b"\x01"))
    Reader(s).packet()  # SUBACK
    s.sendall(packet(0xE0, b""))
    s.close()
    pub = connect(pub_port, "takeover-pub")
    pub_reader = Reader(pub)
    next_payload, results, missing, repeated = 0, [], 0, 0
    time.sleep(0.5)  # the route reaches the publisher's node
    for r in range(rounds):
        first = next_payload
        out = bytearray()
        for i in range(count):
            pid = i % 65535 + 1
            out += packet(0x32, utf8("takeover/x") + pid.to_bytes(2, "big") +
                          str(next_payload).encode())
            next_payload += 1
        pub.sendall(bytes(out))
        for _ in range(count):
            pub_reader.packet()  # PUBACK
        port = port_b if r % 2 == 0 else port_a
        t0 = time.perf_counter()
        s = connect(port, "roamer", clean=False)
        t_connack = time.perf_counter()
        reader, seen = Reader(s), set()
        while len(seen) < count:
            first_byte, body = reader.packet()
            if first_byte >> 4 != 3:
                continue
            tlen = int.from_bytes(body[:2], "big")
            pid = body[2 + tlen:4 + tlen]
            n = int(body[4 + tlen:])
            if (first_byte >> 1) & 3:
                s.sendall(packet(0x40, pid))
            if n in seen or n < first:
                repeated += 1
            seen.add(n)
        t_last = time.perf_counter()
        missing += sum(1 for n in range(first, next_payload) if n not in seen)
        s.sendall(packet(0xE0, b""))
        s.close()
        results.append({"connack_ms": (t_connack - t0) * 1000, "all_ms": (t_last - t0) * 1000})
        time.sleep(0.7)  # the old node lets go of its copy (hand-off linger)
    all_ms = sorted(x["all_ms"] for x in results)
    def pct(p):
        return all_ms[min(len(all_ms) - 1, int(p * len(all_ms)))]
    print(json.dumps({"rounds": rounds, "count": count, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                      "max_ms": all_ms[-1],
                      "connack_p50_ms": sorted(x["connack_ms"] for x in results)[len(results) // 2],
                      "missing": missing, "repeated": repeated, "rounds_ms": results}))


def stalled(port, topic, qos):
    s = connect(port, "stalled-subscriber")
    s.sendall(packet(0x82, (1).to_bytes(2, "big") + utf8(topic) + bytes([qos])))
    recv_exactly(s, 5)  # SUBACK
    print("ready", flush=True)
    while True:  # never reads from the broker again
        time.sleep(3600)


def closed_by_peer(s):
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(65536, socket.MSG_PEEK) == b""
    except OSError:
        return True


def partial(port, pid, count, nbytes):
    before = settled_rss(pid)
    # PUBLISH QoS 0 whose remaining length makes a 1 MB packet; topic "t".
    head = bytes([0x30]) + varint(MB - 4) + utf8("t")
    clients, refused = [], 0
    for i in range(count):
        s = connect(port, f"partial-{i}")
        try:
            s.sendall(head + b"x" * nbytes)
        except OSError:
            refused += 1
        clients.append(s)
    held = settled_rss(pid)
    refused += sum(1 for s in clients if closed_by_peer(s))
    for s in clients:
        s.close()
    after = settled_rss(pid)
    print(json.dumps({"clients": count, "bytes_each": len(head) + nbytes, "rss_before_kb": before,
                      "rss_held_kb": held, "rss_after_kb": after, "closed_by_broker": refused}))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "stalled" and len(sys.argv) == 5:
        stalled(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif mode == "routes" and len(sys.argv) == 5:
        routes(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "sessions" and len(sys.argv) == 4:
        sessions(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "takeover" and len(sys.argv) == 7:
        takeover(*(int(a) for a in sys.argv[2:7]))
    elif mode == "partial" and len(sys.argv) == 6:
        partial(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
