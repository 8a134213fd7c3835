#!/usr/bin/env python3
"""Traffic driver for the Wagtail detection capture (scripts/make-capture.sh wagtail).

Runs inside the client namespace (wa-cli), where every benign persona, the established
attackers and the python login attackers bind their own source address; ffuf runs in
its own namespace (wa-scan) through `ip netns exec`, and wrk runs from the namespace's
primary address (10.83.0.100, the burst client). Client side is python3 stdlib only,
plus wrk and ffuf as subprocesses.

Personas (all against http://10.83.0.2/, nginx in front of Wagtail):
  readers      browse /blog/, /blog/?page=N, /blog/?tag=T, /search/ and many /blog/{slug}/
               pages (links parsed from the listings), or use the read API v2
               (/api/v2/pages/?type=...&fields=..., /api/v2/pages/{id}/, images, documents)
  authors      editors who log in through the admin's HTML form (CSRF), browse the
               dashboard and explorer, open their own pages in the editor (editing-session
               pings, autosave as the Wagtail 8 editor does), publish edits, and after
               300 s create, publish, edit and delete their own pages
  integration  polls /api/v2/pages/?limit=20 and the same 24 page ids
  office       one NAT address, several editors logging in and out, one typo
  late-comers  readers that first appear after 300 s and read posts nobody read before
Attacks after 300 s: wrk burst, python login stuffing and brute force (hydra's
http-post-form cannot carry Django's per-form CSRF token), ffuf scan, a BOLA walk over
/api/v2/pages/{id}/, an editor doing privileged things, and distributed stuffing.

Usage: wagtail_traffic.py --addresses           (print the client addresses, for the netns)
       wagtail_traffic.py INVENTORY LABELS LOG  (run the ~600 s timeline, write labels)
"""
import argparse
import gzip
import html
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from html.parser import HTMLParser

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kit  # noqa: E402  (scripts/capture-kit/kit.py)

SRV = "10.83.0.2"
PORT = 80
NET = "10.83.0."
DURATION = 600.0
SPEED = 1.0

# ---- address plan ------------------------------------------------------------------
BURST = NET + "100"        # primary address of wa-cli (wrk uses it)
STUFF = NET + "101"
BRUTE = NET + "102"
SCAN = NET + "103"         # lives in namespace wa-scan (ffuf)
ENUM = NET + "104"
UNUSUAL = NET + "105"
HTML_READERS = [NET + str(i) for i in range(10, 17)]
API_READERS = [NET + str(i) for i in range(18, 21)]
INTEGRATION = NET + "22"
AUTHORS = [NET + str(i) for i in range(23, 27)]
OFFICE = NET + "31"
MIXED_READERS = [NET + str(i) for i in range(32, 34)]
LATE = [NET + "40", NET + "41", NET + "42"]
DIST = [NET + str(i) for i in range(120, 132)]
BENIGN = HTML_READERS + API_READERS + [INTEGRATION] + AUTHORS + [OFFICE] + MIXED_READERS + LATE

# attack schedule (seconds after the start)
AT_BURST, AT_STUFF, AT_BRUTE, AT_SCAN, AT_ENUM, AT_UNUSUAL, AT_DIST = 310, 340, 370, 400, 430, 480, 320
DIST_END = 560
WIDGET_LIST = "/api/v2/pages/?type=blog.BlogPage&fields=title,date,feed_image&order=-date&limit=5"
BURST_SECONDS = 18

UA_BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 Edg/123.0.0.0",
]
UA_APPS = [
    "NewsWidget/1.2 (Android 14) okhttp/4.12.0",
    "BlogReader/3.4.1 (iPhone; iOS 17.4; Scale/3.00)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
]
SEARCH_WORDS = ["sourdough", "kubernetes", "garden", "travel", "espresso", "postgres", "hiking", "rust",
                "bees", "typography", "budget", "cameras", "bread", "design", "tea", "keyboards", "solar"]
NEW_SUBJECTS = ["Herb Gardens on a Balcony", "Observability Budgets", "Night Trains Across Europe",
                "Pour Over Coffee", "Small Team Roadmaps", "Winter Cycling", "Flaky Test Suites",
                "Pickling Season", "Dark Mode Design", "Volunteer Moderation", "Backpacking Stoves",
                "Schema Reviews", "Bird Feeders", "Long Exposure Photography", "Async Standups",
                "Seed Saving", "Terminal Workflows", "City Breaks in Winter", "Cast Iron Pans",
                "Writing Runbooks"]

# ---- shared state -------------------------------------------------------------------
LOCK = threading.Lock()
FIRST_SENT = [None]
LOG = []
START = [0.0]
STOP = threading.Event()


def now():
    return time.time() - START[0]


def at(seconds):
    """Sleep until `seconds` after the start (returns False if the run is stopping)."""
    while True:
        left = START[0] + seconds - time.time()
        if left <= 0:
            return True
        if STOP.wait(min(left, 1.0)):
            return False


def pause(rng, lo, hi, until):
    """A human pause, cut short at `until`; False once `until` has passed."""
    t = rng.uniform(lo, hi)
    left = START[0] + until - time.time()
    if left <= 0:
        return False
    STOP.wait(min(t, left) * SPEED)
    return now() < until and not STOP.is_set()


# ---- HTTP client ----------------------------------------------------------------------
class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return {}


class Client:
    """One keep-alive connection from a fixed source address, with a cookie jar."""

    def __init__(self, src, ua, kind="browser", persona=""):
        self.src, self.ua, self.kind, self.persona = src, ua, kind, persona
        self.conn = None
        self.cookies = {}
        self.referer = None
        self.last_html = ""

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def _headers(self, extra):
        h = {"Host": SRV, "User-Agent": self.ua}
        if self.kind == "browser":
            h["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
            h["Accept-Language"] = "en-GB,en;q=0.9"
            h["Accept-Encoding"] = "gzip, deflate"
        elif self.kind == "api":
            h["Accept"] = "application/json"
            h["Accept-Encoding"] = "gzip"
        else:  # python stdlib tooling: http.client adds Accept-Encoding: identity itself
            h["Accept"] = "*/*"
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None, follow=None):
        follow = (self.kind == "browser") if follow is None else follow
        for hop in range(4):
            resp = self._once(method, path, body, headers)
            loc = resp.headers.get("location")
            if not (follow and loc and resp.status in (301, 302, 303, 307, 308)):
                return resp
            p = urllib.parse.urlsplit(loc)
            path = p.path + ("?" + p.query if p.query else "")
            if resp.status in (301, 302, 303):
                method, body = "GET", None
                headers = {k: v for k, v in (headers or {}).items()
                           if k.lower() not in ("content-type", "origin", "x-csrftoken")}
        return resp

    def _once(self, method, path, body, headers):
        h = self._headers(headers)
        if self.kind == "browser" and self.referer and "Referer" not in h:
            h["Referer"] = self.referer
        if body is not None:
            h["Content-Length"] = str(len(body))
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(SRV, PORT, timeout=60, source_address=(self.src, 0))
            t = time.time()
            with LOCK:
                if FIRST_SENT[0] is None:
                    FIRST_SENT[0] = t
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady) as e:
                self.close()
                if attempt == 0:
                    continue  # the server closed an idle keep-alive connection: reconnect once
                LOG.append({"t": round(t - START[0], 3), "src": self.src, "m": method, "p": path,
                            "s": 0, "who": self.persona, "err": repr(e)})
                return Resp(0, {}, b"")
            except OSError as e:
                self.close()
                LOG.append({"t": round(t - START[0], 3), "src": self.src, "m": method, "p": path,
                            "s": 0, "who": self.persona, "err": repr(e)})
                return Resp(0, {}, b"")
            hdrs = {}
            for k, v in r.getheaders():
                if k.lower() == "set-cookie":
                    name, _, rest = v.partition("=")
                    val = rest.split(";", 1)[0]
                    if val == "" or "max-age=0" in v.lower():
                        self.cookies.pop(name.strip(), None)
                    else:
                        self.cookies[name.strip()] = val
                hdrs[k.lower()] = v
            enc = hdrs.get("content-encoding", "")
            if enc == "gzip":
                data = gzip.decompress(data)
            elif enc == "deflate":
                data = zlib.decompress(data)
            if r.getheader("connection", "").lower() == "close":
                self.close()
            LOG.append({"t": round(t - START[0], 3), "src": self.src, "m": method, "p": path,
                        "s": r.status, "who": self.persona})
            resp = Resp(r.status, hdrs, data)
            if self.kind == "browser" and method == "GET" and "text/html" in hdrs.get("content-type", ""):
                self.referer = "http://%s%s" % (SRV, path)
                self.last_html = resp.text
            return resp
        return Resp(0, {}, b"")

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post_form(self, path, fields, extra=None, follow=None):
        body = urllib.parse.urlencode([tuple(f) for f in fields]).encode()
        h = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://" + SRV}
        h.update(extra or {})
        return self.request("POST", path, body=body, headers=h, follow=follow)

    def post_multipart(self, path, fields, extra=None):
        boundary = "----WebKitFormBoundary" + uuid.uuid4().hex[:16]
        parts = []
        for k, v in fields:
            parts.append("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (boundary, k, v))
        parts.append("--%s--\r\n" % boundary)
        body = "".join(parts).encode()
        h = {"Content-Type": "multipart/form-data; boundary=" + boundary, "Origin": "http://" + SRV,
             "Accept": "application/json", "X-CSRFToken": self.csrf()}
        h.update(extra or {})
        return self.request("POST", path, body=body, headers=h, follow=False)

    def csrf(self):
        m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.last_html)
        if m:
            return m.group(1)
        m = re.search(r'&quot;CSRF_TOKEN&quot;: &quot;([^&]+)&quot;|"CSRF_TOKEN": "([^"]+)"', self.last_html)
        if m:
            return m.group(1) or m.group(2)
        return self.cookies.get("csrftoken", "")


class FormParser(HTMLParser):
    """Collects the fields a browser would submit for the form with the given id/action."""

    def __init__(self, match):
        super().__init__(convert_charrefs=True)
        self.match, self.depth, self.inside = match, 0, False
        self.fields, self.action = [], None
        self._textarea = self._select = None
        self._select_val = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            if not self.inside and self.action is None and (
                    a.get("id") == self.match or (a.get("action") or "").startswith(self.match)):
                self.inside, self.action = True, a.get("action")
            return
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            t = (a.get("type") or "text").lower()
            if t in ("submit", "button", "image", "reset", "file"):
                return
            if t in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append([name, a.get("value", "on" if t in ("checkbox", "radio") else "")])
        elif tag == "textarea" and name:
            self._textarea = [name, ""]
        elif tag == "select" and name:
            self._select, self._select_val = name, None
        elif tag == "option" and self._select:
            if self._select_val is None or "selected" in a:
                self._select_val = a.get("value", "")

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append(self._textarea)
            self._textarea = None
        elif tag == "select" and self._select:
            self.fields.append([self._select, self._select_val or ""])
            self._select = None


def form_fields(page_html, match):
    p = FormParser(match)
    p.feed(page_html)
    return p.fields, p.action


def set_field(fields, name, value):
    for f in fields:
        if f[0] == name:
            f[1] = value
            return
    fields.append([name, value])


def draftail(paragraphs):
    blocks = [{"key": uuid.uuid4().hex[:5], "type": "unstyled", "depth": 0, "text": p,
               "inlineStyleRanges": [], "entityRanges": [], "data": {}} for p in paragraphs]
    return json.dumps({"blocks": blocks, "entityMap": {}})


def links(page_html):
    return re.findall(r'href="(/blog/[^"#]*)"', page_html)


def slugify(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower().replace("'", "")).strip("-")


# ---- site knowledge (seeded inventory) --------------------------------------------------
class Site:
    def __init__(self, inv, rng):
        self.inv = inv
        self.index = inv["index_id"]
        self.users = {u["username"]: u for u in inv["users"]}
        self.live = [p for p in inv["posts"] if p["live"]]
        self.by_slug = {p["slug"]: p for p in inv["posts"]}
        owners = {}
        for p in self.live:
            owners.setdefault(p["owner"], []).append(p)
        editors = [u for u in inv["users"] if u["role"] == "editor"]
        editors.sort(key=lambda u: -len(owners.get(u["username"], [])))
        self.owners = owners
        self.authors = [u["username"] for u in editors[:4]]
        self.office = [u["username"] for u in editors[4:10]]
        self.unusual = [u["username"] for u in inv["users"] if u["role"] == "moderator"][0]
        busy = set(self.authors) | set(self.office) | {self.unusual}
        others = [p for p in self.live if p["owner"] not in busy]
        rng.shuffle(others)
        # pages the unusual editor edits, unpublishes and deletes (owned by other editors)
        self.victims = others[:6]
        rest = others[6:]
        self.integration_ids = sorted(p["id"] for p in rest[:24])
        pool = [p for p in rest[24:]]
        self.reserved = {p["slug"] for p in pool[:40]}   # nobody reads these before 300 s
        self.reserved_ids = {p["id"] for p in pool[:40]}
        self.images = inv["images"]
        self.documents = inv["documents"]
        self.new_titles = [pat.format(s=s) for s in NEW_SUBJECTS for pat in inv["patterns"]]
        rng.shuffle(self.new_titles)
        self.title_lock = threading.Lock()

    def new_title(self):
        with self.title_lock:
            return self.new_titles.pop()


# ---- benign personas ------------------------------------------------------------------
def read_post_html(c, rng, site, cur_links, visited, until, prefer_reserved=False):
    posts = [l for l in cur_links if l.count("/") == 3 and "?" not in l and l != "/blog/"]
    if now() < 300:
        posts = [l for l in posts if l.split("/")[2] not in site.reserved]
    fresh = [l for l in posts if l not in visited]
    if prefer_reserved:
        fresh = [l for l in fresh if l.split("/")[2] in site.reserved] or fresh
    if not fresh:
        return None
    path = rng.choice(fresh)
    visited.add(path)
    return c.get(path)


def html_reader(src, rng, site, start, until, prefer_reserved=False, persona="reader"):
    c = Client(src, rng.choice(UA_BROWSERS), "browser", persona)
    if not at(start):
        return
    r = c.get(rng.choice(["/", "/blog/", "/blog/"]))
    listing = links(r.text)
    visited = set()
    for _ in range(400):
        if not pause(rng, 2.0, 7.0, until):
            break
        if rng.random() < 0.2 and not pause(rng, 10, 30, until):   # reading a long post
            break
        x = rng.random()
        if prefer_reserved and now() >= 300 and x < 0.75:
            slug = rng.choice(sorted(site.reserved))
            path = "/blog/%s/" % slug
            if path not in visited:
                visited.add(path)
                c.get(path)
                continue
        if x < 0.66 and listing:
            r = read_post_html(c, rng, site, listing, visited, until, prefer_reserved)
            if r is None:
                r = c.get("/blog/?page=%d" % rng.randint(1, 19))
                listing = links(r.text)
            elif rng.random() < 0.25:
                tags = [l for l in links(r.text) if "?tag=" in l]
                if tags and pause(rng, 1.5, 5, until):
                    r = c.get(html.unescape(rng.choice(tags)))
                    listing = links(r.text)
        elif x < 0.8:
            r = c.get("/blog/?page=%d" % rng.randint(2, 19))
            listing = links(r.text)
        elif x < 0.88:
            r = c.get("/blog/")
            listing = links(r.text)
        elif x < 0.96:
            q = rng.choice(SEARCH_WORDS)
            r = c.get("/search/?query=%s" % q)
            found = re.findall(r'href="(/blog/[^"#?]+/)"', r.text)
            listing = found or listing
        else:
            c.get("/")
    c.close()


def api_list_path(rng, offset):
    return "/api/v2/pages/?type=blog.BlogPage&fields=title,date,intro,feed_image&order=-date&limit=10&offset=%d" % offset


def api_reader(src, rng, site, start, until, ua=None, prefer_reserved=False, persona="api-reader", client=None):
    c = client or Client(src, ua or rng.choice(UA_APPS), "api", persona)
    if not at(start):
        return c
    seen = set()
    offset = 0
    for _ in range(300):
        if now() >= until or STOP.is_set():
            break
        x = rng.random()
        if x < 0.6:
            r = c.get(api_list_path(rng, offset))
            items = r.json().get("items", [])
            rng.shuffle(items)
            for it in items[:rng.randint(1, 4)]:
                if now() < 300 and it["id"] in site.reserved_ids:
                    continue
                if not pause(rng, 2.0, 6.0, until):
                    return c
                if it["id"] in seen and rng.random() < 0.7:
                    continue
                seen.add(it["id"])
                c.get("/api/v2/pages/%d/" % it["id"])
                img = it.get("feed_image")
                if img and rng.random() < 0.35 and pause(rng, 0.5, 2.0, until):
                    c.get("/api/v2/images/%d/" % img["id"])
            offset = rng.choice([0, 0, offset + 10, rng.randrange(0, 220, 10)])
        elif x < 0.72:
            c.get("/api/v2/pages/?type=blog.BlogPage&search=%s&fields=title,date&limit=10" % rng.choice(SEARCH_WORDS))
        elif x < 0.82:
            pool = [p for p in site.live if now() >= 300 or p["slug"] not in site.reserved]
            if prefer_reserved and now() >= 300:
                pool = [p for p in site.live if p["slug"] in site.reserved]
            p = rng.choice(pool)
            c.get("/api/v2/pages/find/?html_path=/blog/%s/" % p["slug"], follow=True)
        elif x < 0.9:
            r = c.get("/api/v2/documents/")
            docs = r.json().get("items", [])
            if docs and pause(rng, 1, 4, until):
                d = rng.choice(docs)
                c.get("/api/v2/documents/%d/" % d["id"])
                if rng.random() < 0.5 and pause(rng, 1, 3, until):
                    dl = d.get("meta", {}).get("download_url", "")
                    if dl:
                        c.get(urllib.parse.urlsplit(dl).path)
        elif x < 0.95:
            c.get("/api/v2/images/?limit=12")
        else:
            c.get("/api/v2/pages/%d/" % site.index)
        if not pause(rng, 2.0, 7.0, until):
            break
    return c


def mixed_reader(src, rng, site, start, until, persona="mixed-reader"):
    """A reader whose browser app mixes the site with the API (one address, two clients)."""
    if not at(start):
        return
    t = start
    while t < until - 5 and not STOP.is_set():
        seg = rng.uniform(40, 110)
        if rng.random() < 0.5:
            html_reader(src, rng, site, t, min(until, t + seg), persona=persona)
        else:
            api_reader(src, rng, site, t, min(until, t + seg), persona=persona).close()
        t = now() + rng.uniform(2, 8)


def integration(src, rng, site, start, until):
    c = Client(src, "content-sync/2.3 (+ops@example.org) python-requests/2.31.0", "api", "integration")
    if not at(start):
        return
    ids = list(site.integration_ids)
    k = 0
    for _ in range(1000):
        if now() >= until or STOP.is_set():
            break
        c.get("/api/v2/pages/?limit=20")
        for _ in range(2):
            c.get("/api/v2/pages/%d/" % ids[k % len(ids)])
            k += 1
            STOP.wait(0.15)
        if not pause(rng, 6.0, 8.0, until):
            break
    c.close()


# ---- admin (editor) flows -------------------------------------------------------------
def typo(pw, rng):
    i = rng.randrange(len(pw) - 1)
    return pw[:i] + pw[i + 1] + pw[i] + pw[i + 2:] if pw[i] != pw[i + 1] else pw[:i] + pw[i + 1:]


def login(c, user, password, rng, mistype=False):
    """Browser login: /admin/ redirects to the form, the form is posted with its CSRF token."""
    r = c.get("/admin/")
    if "sessionid" in c.cookies and r.status == 200 and "login-form" not in r.text:
        return True
    tries = [typo(password, rng), password] if mistype else [password]
    for pw in tries:
        tok = c.csrf()
        pause(rng, 3.0, 7.0, DURATION)   # typing
        c.post_form("/admin/login/", [("csrfmiddlewaretoken", tok), ("next", "/admin/"),
                                      ("username", user), ("password", pw)])
        if "sessionid" in c.cookies:
            return True
    return False


def logout(c):
    tok = c.csrf()
    c.post_form("/admin/logout/", [("csrfmiddlewaretoken", tok)])
    c.cookies.pop("sessionid", None)


def edit_session(c, rng, page_id, until, publish=False, changes=None, autosaves=None):
    """Opens a page in the Wagtail 8 editor: the editor pings its editing session every 10 s,
    autosaves changes (multipart, Accept: application/json) and finally publishes with an
    ordinary form POST (302 to the explorer)."""
    r = c.get("/admin/pages/%d/edit/" % page_id)
    if r.status != 200:
        return False
    page = r.text
    ping = re.search(r'data-w-swap-src-value="(/admin/editing-sessions/ping/[^"]+)"', page)
    rev = re.search(r'name="revision_id" value="([^"]*)"', page)
    revat = re.search(r'name="revision_created_at" value="([^"]*)"', page)
    fields, action = form_fields(page, "page-edit-form")
    if not fields:
        return False
    tok = c.csrf()
    if changes:
        for k, v in changes.items():
            set_field(fields, k, v)
    n_auto = autosaves if autosaves is not None else (rng.randint(1, 2) if publish else 0)
    n_ping = rng.randint(1, 3)
    steps = ["ping"] * n_ping + ["auto"] * n_auto
    rng.shuffle(steps)
    revision_id = rev.group(1) if rev else ""
    for step in steps:
        if not pause(rng, 3.0, 9.0, until + 60):
            break
        if step == "ping" and ping:
            pf = [("is_editing", "1")] if n_auto else []
            if revision_id:
                pf.append(("revision_id", revision_id))
            if revat:
                pf.append(("revision_created_at", revat.group(1)))
            c.post_multipart(ping.group(1), pf, {"X-CSRFToken": tok})
        elif step == "auto":
            af = [list(f) for f in fields]
            if revision_id:
                af.append(["overwrite_revision_id", revision_id])
            resp = c.post_multipart(action, af, {"X-CSRFToken": tok})
            revision_id = str(resp.json().get("revision_id", revision_id) or "")
    if publish:
        pause(rng, 2.0, 5.0, until + 60)
        fields2 = [f for f in fields] + [["action-publish", "action-publish"]]
        c.post_form(action, fields2)
    return True


def create_page(c, rng, site, until):
    """Add a blog post the Wagtail 8 way: add_subpage redirects to the create form; the
    editor's first autosave creates a draft (JSON with the new id), the form is hydrated
    and further autosaves and the final publish go to /admin/pages/{id}/edit/."""
    c.get("/admin/pages/%d/" % site.index) if rng.random() < 0.2 else None
    pause(rng, 1.5, 4.0, until + 60)
    r = c.get("/admin/pages/%d/add_subpage/" % site.index)
    fields, action = form_fields(r.text, "page-edit-form")
    if not fields:
        return None
    tok = c.csrf()
    title = site.new_title()
    slug = slugify(title)
    paras = ["Draft notes on %s." % title.lower(),
             "We tried a few approaches over the last month and wrote down what worked.",
             "More on this in a follow-up post once the numbers are in."]
    set_field(fields, "title", title)
    set_field(fields, "slug", slug)
    set_field(fields, "date", time.strftime("%Y-%m-%d"))
    if not pause(rng, 4.0, 9.0, until + 60):
        return None
    af = [list(f) for f in fields]
    resp = c.post_multipart(action, af, {"X-CSRFToken": tok})     # first autosave: title only
    data = resp.json()
    new_id = data.get("pk")
    if not new_id:
        # not valid yet for an autosave: fill everything in and save a draft the classic way
        set_field(fields, "intro", paras[1])
        set_field(fields, "body", draftail(paras))
        r = c.post_form(action, fields)
        m = re.search(r"/admin/pages/(\d+)/edit/", c.referer or "")
        if not m:
            return None
        new_id = int(m.group(1))
        edit_url = "/admin/pages/%d/edit/" % new_id
    else:
        edit_url = data.get("url") or "/admin/pages/%d/edit/" % new_id
        if data.get("hydrate_url"):
            c.get(data["hydrate_url"], follow=False)
        rev = str(data.get("revision_id", ""))
        for text in (paras[1], None):
            if not pause(rng, 4.0, 9.0, until + 60):
                break
            set_field(fields, "intro", paras[1])
            set_field(fields, "body", draftail(paras if text is None else paras[:2]))
            af = [list(f) for f in fields] + [["overwrite_revision_id", rev]]
            resp = c.post_multipart(edit_url, af, {"X-CSRFToken": tok})
            rev = str(resp.json().get("revision_id", rev) or rev)
        pause(rng, 2.0, 5.0, until + 60)
        set_field(fields, "intro", paras[1])
        set_field(fields, "body", draftail(paras))
        c.post_form(edit_url, fields + [["action-publish", "action-publish"]])
    return {"id": int(new_id), "slug": slug, "title": title}


def delete_page(c, rng, page_id, until):
    r = c.get("/admin/pages/%d/delete/" % page_id)
    if r.status != 200:
        return False
    tok = c.csrf()
    pause(rng, 1.5, 4.0, until + 30)
    c.post_form("/admin/pages/%d/delete/" % page_id, [("csrfmiddlewaretoken", tok)])
    return True


AUTHOR_MIX = {"dashboard": 7, "explorer": 0.7, "editor": 2, "own_page": 15, "history": 0.7,
              "own_api": 20, "read": 50, "admin_search": 2}
OFFICE_MIX = {"dashboard": 4, "explorer": 1, "editor": 1, "own_page": 10, "history": 0,
              "own_api": 15, "read": 67, "admin_search": 2}


def author_browse(c, rng, site, own, step_until, mix=None):
    """One ordinary step of an editor: dashboard, explorer, own pages (admin, site, API),
    mostly reading the site; the admin screens are heavy, so they are the rarer steps."""
    mix = dict(mix or AUTHOR_MIX)
    if not own:
        for k in ("editor", "own_page", "history", "own_api"):
            mix[k] = 0
    if now() > step_until - 60:
        mix["editor"] = 0
    what = rng.choices(list(mix), weights=list(mix.values()))[0]
    if what == "dashboard":
        c.get("/admin/")
    elif what == "explorer":
        c.get("/admin/pages/%d/" % site.index + ("?p=2" if rng.random() < 0.25 else ""))
    elif what == "editor":
        edit_session(c, rng, rng.choice(own)["id"], step_until)
    elif what == "own_page":
        c.get("/blog/%s/" % rng.choice(own)["slug"])
    elif what == "history":
        c.get("/admin/pages/%d/history/" % rng.choice(own)["id"])
    elif what == "own_api":
        c.get("/api/v2/pages/%d/" % rng.choice(own)["id"], headers={"Accept": "application/json"})
    elif what == "read":
        ls = getattr(c, "blog_links", None)
        if not ls or rng.random() < 0.4:
            r = c.get("/blog/?page=%d" % rng.randint(1, 5)) if rng.random() < 0.4 else c.get("/blog/")
            ls = c.blog_links = [l for l in links(r.text) if l.count("/") == 3 and "?" not in l
                                 and (now() >= 300 or l.split("/")[2] not in site.reserved)]
        for _ in range(rng.randint(1, 2)):
            if ls and pause(rng, 2, 7, step_until):
                c.get(rng.choice(ls))
    else:
        c.get("/admin/pages/search/?q=%s" % rng.choice(SEARCH_WORDS))


def author(src, rng, site, user, start, until, mistype=False, learn_create=False, learn_edit=False,
           deletes=True, persona="author", client=None, stop_before=None, mix=None):
    u = site.users[user]
    c = client or Client(src, rng.choice(UA_BROWSERS[:4] + UA_BROWSERS[6:]), "browser", persona)
    if not at(start):
        return c
    if not login(c, user, u["password"], rng, mistype):
        return c
    own = list(site.owners.get(user, []))
    created = []
    write_at = rng.uniform(max(305, start + 30), min(until - 60, 390))
    learn_at = rng.uniform(90, 230)
    did_learn = did_write = did_edit_new = did_delete = False
    edit_new_at = delete_at = None
    end = stop_before or until
    for _ in range(400):
        if not pause(rng, 2.5, 8.0, end):
            break
        t = now()
        if t > end - 75:   # no new editing flow that could run past the end
            author_browse(c, rng, site, own + created, end, mix)
            continue
        if (learn_create or learn_edit) and not did_learn and t >= learn_at and t < 285:
            did_learn = True
            if learn_create:
                p = create_page(c, rng, site, 295)
                if p:
                    created.append(p)
                    c.get("/blog/%s/" % p["slug"])
            elif own:
                edit_session(c, rng, rng.choice(own)["id"], 295, publish=True,
                             changes={"intro": rng.choice(own)["title"] + " (updated)"})
            continue
        if not did_write and t >= write_at:
            did_write = True
            p = create_page(c, rng, site, until)
            if p:
                created.append(p)
                pause(rng, 2, 5, until)
                c.get("/blog/%s/" % p["slug"])
                edit_new_at = now() + rng.uniform(15, 40)
                delete_at = edit_new_at + rng.uniform(20, 45) if deletes else None
            continue
        if created and edit_new_at and not did_edit_new and t >= edit_new_at:
            did_edit_new = True
            p = created[-1]
            edit_session(c, rng, p["id"], until, publish=True,
                         changes={"intro": "Updated: the numbers are in, see the last section."})
            continue
        if created and delete_at and not did_delete and t >= delete_at:
            did_delete = True
            p = created.pop()
            delete_page(c, rng, p["id"], until)
            continue
        author_browse(c, rng, site, own + created, end, mix)
    if client is None and rng.random() < 0.6:
        logout(c)
    return c


def office(src, rng, site, start, until):
    """A NAT'ed office: several editors, each in their own browser (own cookies and
    connection), logging in and out over the run from the same address."""
    users = site.office
    plan = [(users[0], 8, 150, False), (users[1], 30, 205, False), (users[2], 95, 235, True),
            (users[3], 215, 335, False), (users[4], 318, 450, False), (users[5], 410, 570, False)]
    threads = []
    for n, (user, s, e, typo_) in enumerate(plan):
        r2 = random.Random(rng.random())
        t = threading.Thread(target=office_user, args=(src, r2, site, user, s, min(e, until), typo_, n), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()


def office_user(src, rng, site, user, start, until, mistype, n):
    c = Client(src, UA_BROWSERS[n % 3], "browser", "office")
    if not at(start):
        return
    u = site.users[user]
    if not login(c, user, u["password"], rng, mistype):
        return
    own = site.owners.get(user, [])
    edited = False
    for _ in range(300):
        if not pause(rng, 2.5, 7.0, until):
            break
        if own and not edited and n % 2 == 0 and rng.random() < 0.04 and now() < until - 60:
            edited = True
            edit_session(c, rng, rng.choice(own)["id"], until, publish=True,
                         changes={"intro": own[0]["title"] + ": a short update from the office."})
            continue
        author_browse(c, rng, site, own, until, OFFICE_MIX)
    logout(c)
    c.close()


# ---- attacks ------------------------------------------------------------------------
def burst_client(rng, site, labels):
    """A news widget: every few seconds it refreshes the cover image of the post it
    shows (/api/v2/images/{id}/) and now and then the latest-posts list; at 310 s wrk
    (4 connections) hammers that cover image's endpoint from the same address."""
    c = Client(BURST, UA_APPS[0], "api", "burst")
    if not at(6):
        return
    covers = []
    for _ in range(200):
        if now() >= AT_BURST - 3:
            break
        if not covers or rng.random() < 0.3:
            r = c.get(WIDGET_LIST)
            covers = [i["feed_image"]["id"] for i in r.json().get("items", []) if i.get("feed_image")] or covers
            if rng.random() < 0.3:
                items = [i for i in r.json().get("items", []) if i["id"] not in site.reserved_ids]
                if items:
                    c.get("/api/v2/pages/%d/" % rng.choice(items)["id"])
        if covers:
            c.get("/api/v2/images/%d/" % covers[0])
            if len(covers) > 1 and rng.random() < 0.3:
                c.get("/api/v2/images/%d/" % rng.choice(covers[1:]))
        pause(rng, 2.0, 5.0, AT_BURST - 3)
    c.close()
    path = "/api/v2/images/%d/" % (covers[0] if covers else site.images[0])
    at(AT_BURST)
    t = time.time()
    cmd = ["wrk", "-t2", "-c4", "-d%ds" % BURST_SECONDS, "--timeout", "10s", "http://%s%s" % (SRV, path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=BURST_SECONDS + 30).stdout
    labels["burst"] = {"kind": "burst", "client": BURST, "t": t,
                       "tool": "wrk -t2 -c4 -d%ds GET %s (the widget's cover image endpoint)" % (BURST_SECONDS, path),
                       "out": out}


def login_attack(src, pairs, conns, kind, labels, key, note):
    """What a python stuffing tool does against a Django form login: GET /admin/login/
    for the CSRF cookie and token, POST the credentials; 200 with the form again is a
    failure (and carries the next token), 302 with a sessionid a success. `conns`
    keep-alive connections (requests.Session-like), no delay."""
    results = []
    work = list(pairs)
    wl = threading.Lock()
    t0 = time.time()

    def worker(n):
        c = Client(src, "Python-urllib/3.11", "tool", key)
        r = None
        for _ in range(len(pairs)):
            with wl:
                if not work:
                    break
                user, pw = work.pop(0)
            c.cookies.pop("sessionid", None)
            tok = r and re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text)
            if not tok:
                r = c.get("/admin/login/?next=/admin/", follow=False)
                tok = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text)
            r = c.post_form("/admin/login/", [("csrfmiddlewaretoken", tok.group(1) if tok else ""),
                                              ("next", "/admin/"), ("username", user), ("password", pw)],
                            extra={"Referer": "http://%s/admin/login/?next=/admin/" % SRV}, follow=False)
            results.append((user, r.status))
        c.close()

    ts = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=240)
    labels[key] = {"kind": kind, "client": src, "t": t0, "tool": note,
                   "attempts": len(results), "statuses": sorted({s for _, s in results})}


def stuffing(rng, site, labels):
    if not at(AT_STUFF):
        return
    real = [u for u in site.users.values() if u["role"] != "admin"]
    rng.shuffle(real)
    names = [u["email"] for u in real[:22]] + [u["username"] for u in real[22:40]]
    guesses = ["admin", "administrator", "editor", "webmaster", "test", "info@example.org", "root",
               "support", "marketing", "j.smith", "jsmith", "m.jones", "sarah.lee", "david.brown",
               "press@example.org", "content", "wagtail", "demo", "guest", "news", "hr@example.org",
               "blog", "sales", "staff"]
    names += guesses
    login_attack(STUFF, [(n, "Summer2025!") for n in names[:62]], 4, "credential_stuffing", labels, "stuffing",
                 "python3 stdlib stuffer in wagtail_traffic.py (hydra http-post-form cannot carry Django's "
                 "CSRF token): 4 keep-alive connections, each GET /admin/login/ once for the csrftoken cookie + token, then POST /admin/login/ per attempt (the failed form carries the next token), "
                 "62 usernames/e-mails x 'Summer2025!'")


def brute_force(rng, site, labels):
    if not at(AT_BRUTE):
        return
    victim = site.authors[0]
    words = ["password", "123456", "qwerty", "letmein", "welcome", "admin123", "Password1", "iloveyou",
             "dragon", "monkey", "sunshine", "football", "princess", "trustno1", "master", "shadow",
             "baseball", "superman", "michael", "Summer2024!", "Winter2024!", "Spring2025!", "Autumn2024!",
             "Welcome1!", "Passw0rd!", "changeme", "abc123", "111111", "Qwerty123!", "P@ssw0rd",
             "wagtail", "wagtail123", "django123", "editor2025", "Editor!2025", "blog2025", "letmein!",
             "starwars", "whatever", "hello123", "freedom", "ninja", "mustang", "access", "flower",
             "Harbor-lantern-12", "Maple-river-33", "Copper-falcon-21", "Meadow-cobalt-47", "Summit-willow-58",
             "Ember-granite-64", "Saffron-thistle-19", "Juniper-quartz-72", "Harvest-pepper-85",
             "Violet-orchard-36", "Falcon-meadow-91", "River-copper-27", "Lantern-harbor-44", "Cobalt-summit-63",
             "Willow-ember-55", "Granite-juniper-16", "Quartz-violet-88", "Pepper-saffron-30"]
    words = [w for w in words if w != site.users[victim]["password"]][:62]
    login_attack(BRUTE, [(victim, w) for w in words], 4, "brute_force", labels, "brute",
                 "python3 stdlib brute forcer in wagtail_traffic.py (hydra cannot carry the CSRF token): "
                 "4 keep-alive connections, GET /admin/login/ once each then POST /admin/login/ per attempt, username %r x %d passwords" % (victim, len(words)))


def scan(labels):
    if not at(AT_SCAN):
        return
    t = time.time()
    cmd = ["ip", "netns", "exec", "wa-scan", "ffuf", "-s", "-w", "/usr/share/dirb/wordlists/common.txt",
           "-u", "http://%s/FUZZ" % SRV, "-t", "2", "-p", "0.02", "-maxtime", "15", "-mc", "200,301,302,403"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    labels["scan"] = {"kind": "endpoint_scan", "client": SCAN, "t": t,
                      "tool": "ffuf -w /usr/share/dirb/wordlists/common.txt -u http://10.83.0.2/FUZZ -t 2 -p 0.02 -maxtime 15",
                      "out": out}


def enumeration(rng, site, labels):
    """An API reader (a headless browser app) during learning; at 430 s a python script
    from the same address walks /api/v2/pages/{id}/ over integer ids 1..300 at ~5
    requests/s (live pages 200, drafts/deleted/unused ids 404)."""
    api_reader(ENUM, rng, site, 14, AT_ENUM - 5, ua=UA_APPS[2], persona="enum").close()
    if not at(AT_ENUM):
        return
    c = Client(ENUM, "Python-urllib/3.11", "tool", "enum")
    t = time.time()
    codes = {}
    for pid in range(1, 301):
        if now() > AT_ENUM + 70 or STOP.is_set():
            break
        r = c.get("/api/v2/pages/%d/" % pid)
        codes[r.status] = codes.get(r.status, 0) + 1
        STOP.wait(rng.uniform(0.1, 0.2))
    c.close()
    labels["enum"] = {"kind": "object_enumeration", "client": ENUM, "t": t, "codes": codes,
                      "tool": "python3 (wagtail_traffic.py): a script (Python-urllib UA) walking GET /api/v2/pages/{id}/ "
                              "for ids 1..300 in order, one keep-alive connection, ~5 req/s"}


def unusual(rng, site, labels):
    """A moderator's account that behaved like an ordinary author during learning; at
    480 s it goes to user/group/site administration, the Django admin, reports with CSV
    export, dumps the API with limit=500, and edits, unpublishes and (bulk) deletes pages
    of other editors."""
    c = Client(UNUSUAL, UA_BROWSERS[0], "browser", "unusual")
    author(UNUSUAL, rng, site, site.unusual, 12, AT_UNUSUAL, learn_edit=True, deletes=False,
           persona="unusual", client=c, stop_before=AT_UNUSUAL - 4, mix=OFFICE_MIX)
    if not at(AT_UNUSUAL):
        return
    t = time.time()
    calls = []

    def go(method, path, **kw):
        calls.append("%s %s" % (method, path))
        return c.get(path, **kw) if method == "GET" else None

    for path in ["/admin/users/", "/admin/groups/", "/admin/sites/", "/django-admin/",
                 "/django-admin/auth/user/", "/admin/reports/site-history/",
                 "/admin/reports/site-history/?export=csv", "/admin/reports/aging-pages/?export=csv",
                 "/admin/redirects/", "/admin/workflows/list/"]:
        go("GET", path)
        STOP.wait(rng.uniform(0.8, 2.0))
    c.kind = "api"
    go("GET", "/api/v2/pages/?limit=500&fields=*")
    STOP.wait(1.0)
    go("GET", "/api/v2/documents/?limit=500")
    STOP.wait(1.0)
    c.kind = "browser"
    v = site.victims
    # edit + publish another editor's post
    calls.append("GET+POST /admin/pages/%d/edit/ (owner %s)" % (v[0]["id"], v[0]["owner"]))
    edit_session(c, rng, v[0]["id"], AT_UNUSUAL + 60, publish=True, autosaves=0,
                 changes={"intro": "This post has moved, see our new site.", "title": v[0]["title"] + " (archived)"})
    # unpublish another
    r = c.get("/admin/pages/%d/unpublish/" % v[1]["id"])
    calls.append("GET+POST /admin/pages/%d/unpublish/ (owner %s)" % (v[1]["id"], v[1]["owner"]))
    c.post_form("/admin/pages/%d/unpublish/" % v[1]["id"], [("csrfmiddlewaretoken", c.csrf())])
    STOP.wait(1.0)
    # delete one
    calls.append("GET+POST /admin/pages/%d/delete/ (owner %s)" % (v[2]["id"], v[2]["owner"]))
    delete_page(c, rng, v[2]["id"], AT_UNUSUAL + 60)
    # bulk delete three more
    q = "&".join("id=%d" % p["id"] for p in v[3:6])
    bulk = "/admin/bulk/wagtailcore/page/delete/?next=/admin/pages/%d/&%s" % (site.index, q)
    calls.append("GET+POST " + bulk)
    c.get(bulk)
    STOP.wait(1.5)
    c.post_form(bulk, [("csrfmiddlewaretoken", c.csrf())])
    c.close()
    labels["unusual"] = {"kind": "unusual_endpoint", "client": UNUSUAL, "t": t,
                         "tool": "editor %r (Moderators group) in a browser: " % site.unusual + "; ".join(calls),
                         "victims": [(p["id"], p["owner"]) for p in v]}


def distributed(rng, site, labels):
    """12 addresses, each one failed login (GET form + POST) for a NEW username every
    20-25 s with the same password, from 320 s to 560 s."""
    real = [u for u in site.users.values() if u["role"] != "admin"]
    names = [u["email"] for u in real] + ["%s%d" % (w, n) for w in ("editor", "writer", "news", "web")
                                          for n in range(1, 20)]
    rng.shuffle(names)
    pool = iter(names)
    lock = threading.Lock()
    first = []

    def bot(src, offset, r):
        if not at(AT_DIST + offset):
            return
        c = Client(src, r.choice(UA_BROWSERS), "browser", "dist")
        resp = None
        for _ in range(20):
            if now() > DIST_END:
                break
            with lock:
                user = next(pool)
                first.append(time.time())
            tok = resp and re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', resp.text)
            if not tok:
                resp = c.get("/admin/login/", follow=False)
                tok = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', resp.text)
            resp = c.post_form("/admin/login/", [("csrfmiddlewaretoken", tok.group(1) if tok else ""), ("next", "/admin/"),
                                                 ("username", user), ("password", "Welcome2025!")], follow=False)
            if not pause(r, 20.0, 25.0, DIST_END):
                break
        c.close()

    ts = []
    for n, src in enumerate(DIST):
        t = threading.Thread(target=bot, args=(src, n * 1.7, random.Random(rng.random())), daemon=True)
        t.start()
        ts.append(t)
    for t in ts:
        t.join()
    labels["dist"] = {"kind": "credential_stuffing", "scope": "global", "clients": DIST,
                      "t": min(first) if first else None, "attempts": len(first),
                      "tool": "python3 (wagtail_traffic.py): 12 addresses, each a keep-alive session that GETs /admin/login/ "
                              "once, then POSTs /admin/login/ with a new username every 20-25 s (token from the "
                              "returned form), password 'Welcome2025!'"}


# ---- main ---------------------------------------------------------------------------
# Templates from the site's own URL table (django.urls resolver, parameter names as
# Wagtail declares them); the public pages are Wagtail's page-tree catch-all
# (wagtail_serve), one template per page type; wagtaildocs_serve has unnamed regex
# groups (^(\d+)/(.*)$), named here after its view arguments.
ROUTES = [
    "GET /", "GET /blog/", "GET /blog/{slug}/", "GET /search/",
    "GET /api/v2/pages/", "GET /api/v2/pages/{pk}/", "GET /api/v2/pages/find/",
    "GET /api/v2/images/", "GET /api/v2/images/{pk}/",
    "GET /api/v2/documents/", "GET /api/v2/documents/{pk}/",
    "GET /documents/{document_id}/{document_filename}",
    "GET /admin/", "GET /admin/login/", "POST /admin/login/", "POST /admin/logout/",
    "GET /admin/pages/{parent_page_id}/", "GET /admin/pages/search/",
    "GET /admin/pages/{parent_page_id}/add_subpage/",
    "GET /admin/pages/add/{content_type_app_name}/{content_type_model_name}/{parent_page_id}/",
    "POST /admin/pages/add/{content_type_app_name}/{content_type_model_name}/{parent_page_id}/",
    "GET /admin/pages/{page_id}/edit/", "POST /admin/pages/{page_id}/edit/",
    "GET /admin/pages/{page_id}/history/",
    "GET /admin/pages/{page_id}/delete/", "POST /admin/pages/{page_id}/delete/",
    "GET /admin/pages/{page_id}/unpublish/", "POST /admin/pages/{page_id}/unpublish/",
    "POST /admin/editing-sessions/ping/{app_label}/{model_name}/{object_id}/{session_id}/",
    "GET /admin/bulk/{app_label}/{model_name}/{action}/", "POST /admin/bulk/{app_label}/{model_name}/{action}/",
    "GET /admin/users/", "GET /admin/groups/", "GET /admin/sites/", "GET /admin/redirects/",
    "GET /admin/workflows/list/", "GET /admin/reports/site-history/", "GET /admin/reports/aging-pages/",
    "GET /django-admin/", "GET /django-admin/login/", "GET /django-admin/auth/user/",
]


def exercised_routes(log):
    """The ROUTES templates that the logged requests hit (a literal segment wins over a
    parameter, as in Django's resolver order for these routes)."""
    compiled = []
    for t in ROUTES:
        m, path = t.split(" ", 1)
        rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        compiled.append((t.count("{"), t, m, rx))
    compiled.sort(key=lambda c: c[0])
    hit = set()
    for rec in log:
        if "m" not in rec or not rec.get("s"):
            continue
        path = rec["p"].split("?")[0]
        for _, t, m, rx in compiled:
            if m == rec["m"] and rx.match(path):
                hit.add(t)
                break
    return [t for t in ROUTES if t in hit]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addresses", action="store_true")
    ap.add_argument("inventory", nargs="?")
    ap.add_argument("labels", nargs="?")
    ap.add_argument("log", nargs="?")
    ap.add_argument("--server-version", default="Wagtail")
    ap.add_argument("--seed", type=int, default=8301)
    a = ap.parse_args()
    if a.addresses:
        print(" ".join([BURST] + [x for x in [STUFF, BRUTE, ENUM, UNUSUAL] + BENIGN + DIST]))
        return
    inv = json.load(open(a.inventory))
    rng = random.Random(a.seed)
    site = Site(inv, rng)
    labels = {}
    START[0] = time.time()
    jobs = [(integration, (INTEGRATION, random.Random(rng.random()), site, 0.0, DURATION - 2))]
    for n, src in enumerate(HTML_READERS):
        jobs.append((html_reader, (src, random.Random(rng.random()), site, 1 + n * 2.5, DURATION - rng.uniform(2, 20))))
    for n, src in enumerate(API_READERS):
        jobs.append((lambda *x: api_reader(*x).close(),
                     (src, random.Random(rng.random()), site, 3 + n * 3.1, DURATION - rng.uniform(2, 20))))
    for n, src in enumerate(MIXED_READERS):
        jobs.append((mixed_reader, (src, random.Random(rng.random()), site, 5 + n * 4.3, DURATION - rng.uniform(2, 15))))
    for n, (src, user) in enumerate(zip(AUTHORS, site.authors)):
        jobs.append((lambda *x, **k: author(*x, **k).close(),
                     (src, random.Random(rng.random()), site, user, 4 + n * 3.3, DURATION - rng.uniform(3, 15)),
                     {"mistype": n in (1, 3), "learn_create": n in (2, 3), "learn_edit": n in (0,)}))
    jobs.append((office, (OFFICE, random.Random(rng.random()), site, 0, DURATION - 4)))
    jobs.append((html_reader, (LATE[0], random.Random(rng.random()), site, 328, DURATION - 6, True, "late")))
    jobs.append((html_reader, (LATE[1], random.Random(rng.random()), site, 386, DURATION - 4, True, "late")))
    jobs.append((lambda *x, **k: api_reader(*x, **k).close(),
                 (LATE[2], random.Random(rng.random()), site, 452, DURATION - 3), {"prefer_reserved": True, "persona": "late"}))
    jobs.append((burst_client, (random.Random(rng.random()), site, labels)))
    jobs.append((stuffing, (random.Random(rng.random()), site, labels)))
    jobs.append((brute_force, (random.Random(rng.random()), site, labels)))
    jobs.append((scan, (labels,)))
    jobs.append((enumeration, (random.Random(rng.random()), site, labels)))
    jobs.append((unusual, (random.Random(rng.random()), site, labels)))
    jobs.append((distributed, (random.Random(rng.random()), site, labels)))

    personas = kit.Personas()
    for job in jobs:
        personas.add(job[0], *job[1], **(job[2] if len(job) > 2 else {}))
    personas.start()
    personas.join(START[0] + DURATION + 60)
    STOP.set()
    LOG.extend({"t": round(now(), 3), "err": e} for e in personas.errors)
    t0 = FIRST_SENT[0]
    order = ["burst", "stuffing", "brute", "scan", "enum", "unusual", "dist"]
    attacks = []
    for k in order:
        if k not in labels or labels[k].get("t") is None:
            print("attack %s did not run" % k, file=sys.stderr)
            continue
        L = labels[k]
        e = {"kind": L["kind"]}
        if "scope" in L:
            e["scope"] = L["scope"]
            e["clients"] = L["clients"]
        else:
            e["client"] = L["client"]
        e["start_s"] = round(L["t"] - t0, 1)
        e["tool"] = L["tool"]
        attacks.append(e)
    kit.write_labels(
        a.labels, "wagtail",
        server=a.server_version,
        id_style="integer page ids (/api/v2/pages/{id}/, /admin/pages/{id}/edit/), slugs of realistic "
                    "multi-word titles in public URLs (/blog/{slug}/), integer image/document ids",
        login="Wagtail admin HTML form: GET /admin/login/ (csrftoken cookie + csrfmiddlewaretoken), POST "
                 "/admin/login/ form {csrfmiddlewaretoken,next,username,password}: failure 200 text/html, the "
                 "form again with \"Your username and password didn't match. Please try again.\"; success 302 "
                 "Location: /admin/ with Set-Cookie sessionid",
        benign=BENIGN,
        attacks=attacks,
        routes=exercised_routes(LOG),
    )
    with open(a.log, "w") as f:
        for rec in LOG:
            f.write(json.dumps(rec) + "\n")
        f.write(json.dumps({"t0": t0, "start": START[0], "labels_raw": {k: {kk: vv for kk, vv in v.items()
                                                                          if kk != "t"} for k, v in labels.items()}}) + "\n")
    print("t0 offset %.3f s; %d logged requests" % (t0 - START[0], len(LOG)))


if __name__ == "__main__":
    main()
