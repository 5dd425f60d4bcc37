#!/usr/bin/env python3
"""Overload probes of issue 9, points 6 to 8, against a real ferryd:

  overload_probe.py fd LIMIT ATTEMPTS   ferryd under `prlimit --nofile=LIMIT`;
      ATTEMPTS clients connect in batches of 200 and stay; counts CONNACKs,
      refusals (closed before any byte) and clients left without an answer,
      and asks /api/v1/health after every batch.
  overload_probe.py slowloris N         N sockets send one byte of CONNECT and
      stop (connect_timeout 2 s); counts the log lines about them.
  overload_probe.py admin               64 idle admin connections, then five
      health checks.

FERRYD (default build-test/ferryd) names the binary; the node runs in a
temporary directory. This process raises its own descriptor limit to the
hard one, so ATTEMPTS must stay below it.
"""
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FERRYD = os.environ.get("FERRYD", "build-test/ferryd")
d = tempfile.mkdtemp(prefix="ferry-probe-")
os.makedirs(d + "/data", exist_ok=True)
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
def start(extra, limit):
    open(d+"/ferry.conf","w").write(f"""[node]
name = m@127.0.0.1
data_dir = {d}/data
workers = 2
[log]
level = info
[listener.tcp.default]
bind = 127.0.0.1:0
[admin]
http_bind = 127.0.0.1:0
[sys]
interval = 0
{extra}""")
    log=open(d+"/ferryd.log","w")
    env={k:v for k,v in os.environ.items() if not k.startswith("FERRY_")}
    p=subprocess.Popen(["prlimit", f"--nofile={limit}:{limit}", FERRYD,"-c",d+"/ferry.conf"],stdout=log,stderr=log,env=env)
    for _ in range(200):
        t=open(d+"/ferryd.log").read()
        if " ready " in t: break
        time.sleep(0.05)
    line=[l for l in t.splitlines() if " ready " in l][0]
    port=int(line.split("tcp.default=127.0.0.1:")[1].split()[0]); admin=int(line.split("admin.http=127.0.0.1:")[1].split()[0])
    return p, port, admin
def connect_pkt(i):
    cid=f"c{i}".encode()
    if i%2==0:  # v5
        body=b"\x00\x04MQTT\x05\x02\x00\x3c\x00"+len(cid).to_bytes(2,"big")+cid
    else:
        body=b"\x00\x04MQTT\x04\x02\x00\x3c"+len(cid).to_bytes(2,"big")+cid
    return bytes([0x10,len(body)])+body
def health(admin):
    try:
        t=time.time(); r=urllib.request.urlopen(f"http://127.0.0.1:{admin}/api/v1/health",timeout=5); return r.status, time.time()-t
    except Exception as e:
        return str(e), None
mode=sys.argv[1]
if mode=="fd":
    limit=int(sys.argv[2]); attempts=int(sys.argv[3])
    p,port,admin=start("",limit)
    served=refused=hung=0; socks=[]; hfail=0; hmax=0
    for start_i in range(0,attempts,200):
        batch=[]
        for i in range(start_i,min(attempts,start_i+200)):
            s=socket.socket(); s.connect(("127.0.0.1",port))
            try: s.sendall(connect_pkt(i))
            except OSError: pass
            batch.append(s)
        for s in batch:
            s.settimeout(10)
            try:
                b=s.recv(4)
                if len(b)>=4 and b[0]==0x20 and b[3]==0: served+=1; socks.append(s); continue
                if len(b)==0: refused+=1
                else: print("other", b); 
            except ConnectionResetError: refused+=1
            except socket.timeout: hung+=1
            s.close()
        st,dt=health(admin)
        if st!=200: hfail+=1
        else: hmax=max(hmax,dt)
    m=urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics").read().decode()
    fdl=[l for l in m.splitlines() if 'reason="fd_limit"' in l and not l.startswith("#")]
    log=open(d+"/ferryd.log").read()
    print(f"limit {limit}, {attempts} attempts: served {served}, refused {refused}, no answer {hung}; health non-200 {hfail} times, slowest 200 {hmax*1000:.1f} ms; {fdl}; log lines: {len(log.splitlines())}, 'refused a connection' lines {log.count('refused a connection')}")
    for s in socks: s.close()
    p.terminate(); p.wait()
elif mode=="slowloris":
    n=int(sys.argv[2])
    p,port,admin=start("[mqtt]\nconnect_timeout = 2s\n",20000)
    socks=[]
    for i in range(n):
        s=socket.socket(); s.connect(("127.0.0.1",port)); s.send(b"\x10"); socks.append(s)
    time.sleep(14)
    log=open(d+"/ferryd.log").read()
    print(f"{n} slowloris sockets: 'did not complete' lines {log.count('did not complete')}; count lines: {[l for l in log.splitlines() if 'more in the last' in l]}; total log lines {len(log.splitlines())}")
    for s in socks: s.close()
    p.terminate(); p.wait()
elif mode=="admin":
    p,port,admin=start("",20000)
    socks=[]
    for i in range(64):
        s=socket.socket(); s.connect(("127.0.0.1",admin)); socks.append(s)
    res=[health(admin) for _ in range(5)]
    print(f"64 idle admin connections, then 5 health checks: {[(r[0], round(r[1]*1000,1) if r[1] else None) for r in res]}")
    for s in socks: s.close()
    p.terminate(); p.wait()

import shutil  # noqa: E402
shutil.rmtree(d, ignore_errors=True)
