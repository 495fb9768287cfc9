"""Resident memory of a server under registrations and logins.

usage: python3 tests/load/auth_memory.py BASE_URL N IN_FLIGHT SERVER_PID
Start the server (release) with YIZHAN_TRUSTED_PROXIES=127.0.0.1 so each
client can speak for its own address (the per-address limits stay out of the
way). N registrations and N logins, IN_FLIGHT at a time; prints the peak and
the resident memory after, from /proc/PID/status.
"""
import json, sys, time, threading, urllib.request, random
base = sys.argv[1]; n = int(sys.argv[2]); conc = int(sys.argv[3]); pid = int(sys.argv[4])
def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1]) // 1024
def post(path, body, xff):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"content-type": "application/json", "x-forwarded-for": xff}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r: return r.status
    except urllib.error.HTTPError as e: return e.code
    except Exception as e: return str(e)
statuses = {}; lock = threading.Lock(); peak = [0]
def worker(i0):
    for i in range(i0, n, conc):
        xff = f"10.{(i//250)%250}.{i%250}.{1+i%7}"
        login = f"load{i}-{random.randint(0,1<<30)}@example.org"
        s1 = post("/api/v1/auth/register", {"login": login, "password": "load-pass-2026", "name": "Load"}, xff)
        s2 = post("/api/v1/auth/login", {"login": login, "password": "load-pass-2026"}, xff)
        with lock:
            statuses[(s1, s2)] = statuses.get((s1, s2), 0) + 1
            peak[0] = max(peak[0], rss())
t0 = time.time(); print("rss before", rss(), "MiB")
ts = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"{n} registrations + {n} logins at {conc} in flight: {time.time()-t0:.1f}s; peak rss {peak[0]} MiB; after {rss()} MiB; statuses {statuses}")
time.sleep(3); print("rss 3 s later", rss(), "MiB")
