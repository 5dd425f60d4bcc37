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
    elif mode == "partial" and len(sys.argv) == 6:
        partial(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
