#!/usr/bin/env bash
# Makes captures/posture-tls.pcap: TLS servers with weaknesses a posture check
# reports, on loopback, no keys. Three `openssl s_server`s with throwaway keys and
# certificates made here (python3's `cryptography` backdates validity, which openssl
# 3.0's command line cannot): a legacy server that negotiates only TLS 1.0
# (ECDHE-RSA-AES128-SHA) with a certificate that expired 10 days ago, one on TLS 1.2
# with RSA key exchange (AES128-GCM-SHA256) and a certificate 5 days from expiry,
# and a good one (TLS 1.3, a year left). One `openssl s_client` handshake each.
# Needs root (tcpdump), openssl, python3 with cryptography.
# Usage: scripts/make-posture-tls-capture.sh [OUT.pcap]
set -euo pipefail
out=${1:-captures/posture-tls.pcap}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
work = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
for name, host, start, end in [
    ("legacy", "legacy.example.test", now - datetime.timedelta(days=400), now - datetime.timedelta(days=10)),
    ("rsa", "rsa.example.test", now - datetime.timedelta(days=85), now + datetime.timedelta(days=5)),
    ("good", "good.example.test", now - datetime.timedelta(days=1), now + datetime.timedelta(days=365)),
]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    open(f"{work}/{name}.key", "wb").write(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    open(f"{work}/{name}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
PY
openssl s_server -accept 127.0.0.1:18501 -cert "$work/legacy.pem" -key "$work/legacy.key" \
    -tls1 -cipher 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0' -www -quiet >/dev/null 2>&1 &
openssl s_server -accept 127.0.0.1:18502 -cert "$work/rsa.pem" -key "$work/rsa.key" \
    -tls1_2 -cipher 'AES128-GCM-SHA256' -www -quiet >/dev/null 2>&1 &
openssl s_server -accept 127.0.0.1:18503 -cert "$work/good.pem" -key "$work/good.key" \
    -tls1_3 -www -quiet >/dev/null 2>&1 &
sleep 1
tcpdump -i lo -w "$out" -s 0 -U "tcp portrange 18501-18503" 2>/dev/null &
tcpdump_pid=$!
sleep 1
echo | openssl s_client -connect 127.0.0.1:18501 -servername legacy.example.test -tls1 \
    -cipher 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0' >/dev/null 2>&1 || true
echo | openssl s_client -connect 127.0.0.1:18502 -servername rsa.example.test -tls1_2 \
    -cipher 'AES128-GCM-SHA256' >/dev/null 2>&1 || true
echo | openssl s_client -connect 127.0.0.1:18503 -servername good.example.test -tls1_3 >/dev/null 2>&1 || true
sleep 1
kill $tcpdump_pid; wait $tcpdump_pid 2>/dev/null || true
echo "wrote $out"
