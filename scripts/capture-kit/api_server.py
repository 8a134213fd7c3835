#!/usr/bin/env python3
"""A small JSON API used to make apiwatch's test captures and benchmark traffic.

Endpoints (HTTP/1.1, keep-alive):
  GET    /health                  200 {"status":"ok"}
  POST   /api/login               JSON or form {username, password}: 200 + token, or 401
  GET    /api/items, /api/cart, /api/profile   200 JSON (the everyday endpoints)
  GET    /admin/export            200 (a sensitive endpoint ordinary clients never use)
  GET    /api/users/<id>          200 user, 404 above 1000
  DELETE /api/users/<id>          204
  GET    /api/orders?page=N       200, chunked transfer encoding
  POST   /api/orders              201 (reads the JSON body; honours Expect: 100-continue)
  GET    /static/<n>.bin          200, n KiB of bytes (bulk responses)

Usage: api_server.py ADDRESS PORT
"""
import json
import os
import sys
from urllib.parse import parse_qs
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Status of a failed login: 401 by default; many real APIs answer 200 or 403.
FAIL_STATUS = int(os.environ.get("LOGIN_FAIL_STATUS", "401"))
USERS = {"alice": "correct-horse-battery", "bob": "hunter2-but-longer"}
USERS.update({f"employee{i}": f"pass-{i}" for i in range(100)})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "api-demo/1.0"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/health":
            return self.send_json(200, {"status": "ok"})
        if path in ("/api/items", "/api/cart", "/api/profile"):
            return self.send_json(200, {"path": path, "items": [1, 2, 3]})
        if path == "/admin/export":
            return self.send_json(200, {"export": "all-users.csv", "rows": 1000})
        if path.startswith("/api/users/"):
            uid = path.rsplit("/", 1)[-1]
            if uid.isdigit() and int(uid) <= 1000:
                return self.send_json(200, {"id": int(uid), "name": f"user{uid}"})
            return self.send_json(404, {"error": "no such user"})
        if path == "/api/orders":
            page = int(query.partition("=")[2] or 1) if query.startswith("page=") else 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            parts = [b"["] + [
                json.dumps({"order": page * 100 + i, "total": i * 7}).encode() + (b"," if i < 4 else b"")
                for i in range(5)
            ] + [b"]"]
            for p in parts:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
            self.wfile.write(b"0\r\n\r\n")
            return
        if path.startswith("/static/") and path.endswith(".bin"):
            stem = path[len("/static/"):-4]
            if stem.isdigit() and int(stem) <= 4096:
                body = bytes(range(256)) * (4 * int(stem))
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_json(404, {"error": "not found"})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "15")
        self.end_headers()

    def do_POST(self):
        body = self.read_body()
        if self.path == "/api/login":
            if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                form = parse_qs(body.decode("utf-8", "replace"))
                creds = {k: v[0] for k, v in form.items()}
            else:
                try:
                    creds = json.loads(body or b"{}")
                except ValueError:
                    return self.send_json(400, {"error": "bad json"})
            if USERS.get(creds.get("username")) == creds.get("password"):
                return self.send_json(200, {"token": "demo-token-" + creds["username"]})
            return self.send_json(FAIL_STATUS, {"error": "invalid credentials"})
        if self.path == "/api/orders":
            return self.send_json(201, {"created": True, "bytes": len(body)})
        self.send_json(404, {"error": "not found"})

    def do_DELETE(self):
        self.send_response(204)
        self.end_headers()


if __name__ == "__main__":
    ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
