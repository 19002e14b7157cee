#!/usr/bin/env python3
"""Password logins under a burst: WORKERS parallel browsers, each looping for SECONDS:
GET /authorize (a fresh login form), POST /login with a wrong password (one Argon2id check).
Prints judged logins/s (401), refused (429), latency p50/p99 and the server's RSS (VmRSS,
VmHWM) before and after. Usage: bench-login.py ISSUER CLIENT_ID SERVER_PID [WORKERS] [SECONDS] [BACKOFF]
Standard library only."""
import http.cookiejar, re, sys, threading, time, urllib.error, urllib.parse, urllib.request

issuer, client_id, pid = sys.argv[1], sys.argv[2], sys.argv[3]
workers = int(sys.argv[4]) if len(sys.argv) > 4 else 40
seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 10
# Seconds a worker waits after a 429 (0: retry at once, as an attacker would).
backoff = float(sys.argv[6]) if len(sys.argv) > 6 else 0

def mem():
    f = open(f"/proc/{pid}/status").read()
    g = lambda k: int(re.search(k + r":\s+(\d+)", f).group(1)) // 1024
    return g("VmRSS"), g("VmHWM")

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None

def one(opener, user):
    q = urllib.parse.urlencode({"response_type": "code", "client_id": client_id,
        "redirect_uri": "https://app.example/callback", "scope": "openid", "state": "s",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256"})
    html = opener.open(f"{issuer}/authorize?{q}").read().decode()
    field = lambda n: re.search(r'name="%s" value="([^"]*)"' % n, html).group(1).replace("&#x2f;", "/").replace("&amp;", "&")
    body = urllib.parse.urlencode({"csrf": field("csrf"), "interaction": field("interaction"),
        "username": user, "password": "not the password"}).encode()
    t0 = time.perf_counter()
    try:
        opener.open(f"{issuer}/login", body)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.perf_counter() - t0

results, lock = [], threading.Lock()
def worker(i):
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), NoRedirect)
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        r = one(opener, f"bench{i}-{n}")
        n += 1
        with lock:
            results.append(r)
        if r[0] == 429 and backoff:
            time.sleep(backoff)  # a well-behaved client waits instead of hammering

before = mem()
threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
start = time.time()
for t in threads: t.start()
for t in threads: t.join()
took = time.time() - start
time.sleep(1)
after = mem()
judged = sorted(d for s, d in results if s == 401)
refused = sum(1 for s, _ in results if s == 429)
other = sum(1 for s, _ in results if s not in (401, 429))
pct = lambda p: judged[min(len(judged) - 1, int(p * len(judged)))] * 1000 if judged else 0
print(f"workers={workers} seconds={took:.1f} judged={len(judged)} ({len(judged)/took:.1f}/s) "
      f"refused_429={refused} other={other} p50={pct(0.5):.0f}ms p99={pct(0.99):.0f}ms")
print(f"RSS before {before[0]} MiB (peak {before[1]}), after {after[0]} MiB (peak {after[1]})")
