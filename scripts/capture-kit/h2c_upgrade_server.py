"""A cleartext HTTP/2 server that takes the `Upgrade: h2c` path (RFC 7540 §3.2),
which nginx does not: python-hyper's h2 state machine on a plain socket.
Usage: python3 h2c_upgrade_server.py PORT (serves until killed)."""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            return
        data += more
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    fields = {k.strip().lower(): v.strip() for k, v in (l.split(b":", 1) for l in lines[1:])}
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    conn.initiate_upgrade_connection(fields[b"http2-settings"])
    # Stream 1 is the upgrade request: answer it.
    answer(conn, 1, lines[0].split(b" ")[1])
    sock.sendall(conn.data_to_send())
    buf = rest
    while True:
        if buf:
            events = conn.receive_data(buf)
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    path = dict(ev.headers).get(b":path", b"/")
                    if ev.stream_ended:
                        answer(conn, ev.stream_id, path)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())
        buf = sock.recv(65536)
        if not buf:
            return


def answer(conn, stream, path):
    status = b"404" if b"missing" in path else b"200"
    body = b'{"path":"%s"}\n' % path
    conn.send_headers(stream, [(":status", status), ("content-type", "application/json"),
                               ("content-length", str(len(body)))])
    conn.send_data(stream, body, end_stream=True)


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen()
    while True:
        c, _ = s.accept()
        threading.Thread(target=lambda: (serve(c), c.close()), daemon=True).start()


if __name__ == "__main__":
    main()
