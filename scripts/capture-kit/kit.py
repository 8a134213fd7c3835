"""The capture kit's shared Python: what every traffic driver in apps/ needs besides its
own personas and attacks (python3 stdlib only; imported by apps/*_traffic.py).

  Clock       the run's timeline: a start, a scale (< 1 runs it faster), an end that
              bounds every wait, t0 = the moment the first request of the capture was
              sent (labels count start_s from there)
  Personas    persona threads: started together, each failure reported without
              stopping the others, joined with a deadline
  bounded     a loop bounded in count and time: for i in bounded(n, clock, until): ...
  run_tool    a command (hydra, ffuf, wrk, curl) in a namespace, with a timeout
  routes_hit  the route templates that logged requests hit
  write_labels  the labels file format shared by every labelled capture

Network rule: the drivers only address the server of their own namespaces.
"""
import json
import os
import re
import subprocess
import threading
import time
import traceback

# the order attacks are listed in a labels file: per-client ones first, global last
ATTACK_ORDER = ["burst", "credential_stuffing", "brute_force", "endpoint_scan",
                "object_enumeration", "unusual_endpoint"]


class Clock:
    """Timeline seconds -> wall clock: at(s) sleeps until s timeline seconds after
    start(), nap() a random pause; no wait goes past the end; stop() ends every wait."""

    def __init__(self, scale=1.0, duration=None):
        self.scale = scale
        self.duration = duration
        self.start_time = None
        self.end = None
        self.t0 = None
        self.stopped = threading.Event()
        self._lock = threading.Lock()

    def start(self):
        self.start_time = time.time()
        if self.duration is not None:
            self.end = self.start_time + self.duration * self.scale
        return self

    def remaining(self):
        return float("inf") if self.end is None else max(0.0, self.end - time.time())

    def alive(self):
        return not self.stopped.is_set() and self.remaining() > 0

    def now(self):
        """Timeline seconds since start()."""
        return (time.time() - self.start_time) / self.scale

    def wait(self, seconds):
        """Sleeps `seconds` of wall clock, cut at the end; False once the run is over."""
        if seconds > 0:
            self.stopped.wait(min(seconds, self.remaining()))
        return self.alive()

    def at(self, s):
        """Sleeps until timeline second s; False once the run is over."""
        return self.wait(self.start_time + s * self.scale - time.time())

    def nap(self, lo, hi, rng):
        """A random pause of lo..hi timeline seconds."""
        return self.wait(rng.uniform(lo, hi) * self.scale)

    def stop(self):
        self.stopped.set()

    def mark_sent(self, t=None):
        """Called before each request: the first call fixes t0."""
        if self.t0 is None:
            with self._lock:
                if self.t0 is None:
                    self.t0 = time.time() if t is None else t

    def since_t0(self, t, digits=1):
        return None if t is None or self.t0 is None else round(t - self.t0, digits)


def bounded(count, clock=None, until=None):
    """range(count), stopping early when the clock's run is over or timeline second
    `until` has passed: every load loop has both a count and a time bound."""
    for i in range(count):
        if clock is not None and (not clock.alive() or (until is not None and clock.now() >= until)):
            return
        yield i


class Personas:
    """Persona threads: add() them, start() them together, join() with a deadline."""

    def __init__(self):
        self.threads = []
        self.errors = []

    def add(self, fn, *args, **kwargs):
        def run():
            try:
                fn(*args, **kwargs)
            except Exception as e:  # a failing persona must not stop the others; reported
                traceback.print_exc()
                self.errors.append("%s: %r" % (getattr(fn, "__name__", fn), e))
        self.threads.append(threading.Thread(target=run, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()

    def spawn(self, fn, *args, **kwargs):
        """add() and start at once."""
        self.add(fn, *args, **kwargs)
        self.threads[-1].start()

    def join(self, deadline):
        """Waits for every thread until the wall-clock deadline (daemon threads left
        then die with the process)."""
        for t in self.threads:
            t.join(timeout=max(0.1, deadline - time.time()))


def run_tool(argv, ns=None, timeout=120, log=None, cwd=None):
    """Runs argv (inside namespace ns, if given) with a timeout; its output goes to the
    file `log` (appended, with a header) or nowhere. Returns (start time, exit status
    or "timeout")."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
    t = time.time()
    fh = open(log, "ab") if log else subprocess.DEVNULL
    try:
        if log:
            fh.write(("\n### %s at %.1f: %s\n" % (ns or "", t, " ".join(argv))).encode())
            fh.flush()
        try:
            rc = subprocess.run(cmd, stdout=fh, stderr=fh, timeout=timeout, check=False, cwd=cwd).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
            if log:
                fh.write(b"### timed out\n")
    finally:
        if log:
            fh.close()
    return t, rc


def route_regex(template):
    """'GET /a/{id}/b' -> (method, regex matching the path; a {param} is one segment)."""
    method, path = template.split(" ", 1)
    return method, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")


def routes_hit(templates, requests):
    """The templates (in their order) that some (method, path) of `requests` matches;
    a template with fewer parameters wins, as literal segments do in most routers."""
    compiled = sorted(((t.count("{"), t) + route_regex(t) for t in templates), key=lambda c: c[0])
    hit = set()
    for method, path in requests:
        path = path.split("?")[0]
        for _, t, m, rx in compiled:
            if m == method and rx.match(path):
                hit.add(t)
                break
    return [t for t in templates if t in hit]


def write_labels(path, app, server, id_style, login, benign, attacks, routes, learning_period="5m"):
    """The labels file: which capture, how it was made, the server, its id and login
    styles, the learning period, the benign clients, the attacks (each: kind, client or
    scope+clients, start_s = seconds after the capture's first request, tool) in
    ATTACK_ORDER, per-client before global, and the routes the traffic exercised."""
    attacks = sorted(attacks, key=lambda a: (a.get("scope") == "global", ATTACK_ORDER.index(a["kind"])))
    labels = {
        "capture": "%s.pcap.gz" % app,
        "made_by": "scripts/make-capture.sh %s" % app,
        "server": server,
        "id_style": id_style,
        "login": login,
        "learning_period": learning_period,
        "benign_clients": list(benign),
        "attacks": attacks,
        "routes": list(routes),
    }
    with open(path, "w") as fh:
        json.dump(labels, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return labels


def app_path(*parts):
    """A path beside the apps (for wordlists, helper files)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), *parts)
