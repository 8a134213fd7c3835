#!/usr/bin/env bash
# Makes captures/tls-handshakes.pcap: real TLS handshakes on loopback, no keys.
# nginx (TLS 1.2 and 1.3, h2 and http/1.1) and `openssl s_server` with a throwaway
# self-signed certificate; clients curl (1.2 / 1.3, ALPN h2 / http/1.1 / none) and
# `openssl s_client` (with SNI, without SNI, a resumed TLS 1.2 session, a failed
# handshake: a version the server refuses). Needs root (tcpdump), nginx-light,
# openssl, curl. Usage: scripts/make-tls-capture.sh [OUT.pcap]
set -euo pipefail
out=${1:-captures/tls-handshakes.pcap}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; nginx -p "$work" -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
NGINX_PORT=18443
OSSL_PORT=18444
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=api.example.test/O=apiwatch test" \
  -addext "subjectAltName=DNS:api.example.test,DNS:*.example.test,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=ec.example.test" \
  -keyout "$work/eckey.pem" -out "$work/eccert.pem" 2>/dev/null
mkdir -p "$work/logs"
cat > "$work/nginx.conf" <<CONF
daemon on;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events {}
http {
  access_log off;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { return 200 "ok\n"; }
  }
}
CONF
nginx -p "$work" -c "$work/nginx.conf"
openssl s_server -accept 127.0.0.1:$OSSL_PORT -cert "$work/eccert.pem" -key "$work/eckey.pem" \
  -tls1_2 -www -quiet >/dev/null 2>&1 &
sleep 1
tcpdump -i lo -w "$out" -s 0 -U "tcp port $NGINX_PORT or tcp port $OSSL_PORT" 2>/dev/null &
tcpdump_pid=$!
sleep 1
url=https://api.example.test:$NGINX_PORT/
res="--resolve api.example.test:$NGINX_PORT:127.0.0.1"
curl -sk $res --tlsv1.3 --http2 "$url" >/dev/null
curl -sk $res --tlsv1.3 --http1.1 "$url" >/dev/null
curl -sk $res --tlsv1.2 --tls-max 1.2 --http2 "$url" >/dev/null
curl -sk $res --tlsv1.2 --tls-max 1.2 --http1.1 --no-alpn "$url" >/dev/null
curl -sk --tlsv1.3 "https://127.0.0.1:$NGINX_PORT/" >/dev/null   # no SNI: an address
echo | openssl s_client -connect 127.0.0.1:$NGINX_PORT -servername api.example.test -alpn h2,http/1.1 -tls1_3 >/dev/null 2>&1 || true
echo | openssl s_client -connect 127.0.0.1:$OSSL_PORT -servername ec.example.test -tls1_2 -sess_out "$work/sess" >/dev/null 2>&1 || true
echo | openssl s_client -connect 127.0.0.1:$OSSL_PORT -servername ec.example.test -tls1_2 -sess_in "$work/sess" >/dev/null 2>&1 || true
echo | openssl s_client -connect 127.0.0.1:$OSSL_PORT -servername ec.example.test -tls1_3 >/dev/null 2>&1 || true   # refused: alert
sleep 1
kill $tcpdump_pid; wait $tcpdump_pid 2>/dev/null || true
echo "wrote $out"
