#!/usr/bin/env python3
"""HTTP requests per label of a labelled capture, as tshark dissects them: a check
that a capture (or a re-made one) holds what its labels say.

Usage: count-labels.py CAPTURE[.gz] LABELS.json [--json]

Prints one line per label: 'benign' (the benign clients together), each attack as
KIND@CLIENT (or KIND@global for a scoped one), and 'unlabelled' for any other source.
"""
import collections
import json
import re
import subprocess
import sys


def addresses(spec):
    """A list of addresses, or the hand-written forms of attacks.labels.json:
    '10.77.0.10-29 (20 users)', '10.77.0.120-131'."""
    if isinstance(spec, str):
        spec = [spec]
    out = []
    for item in spec:
        m = re.match(r"^(\d+\.\d+\.\d+\.)(\d+)(?:-(\d+))?", item)
        if not m:
            continue
        lo = int(m.group(2))
        hi = int(m.group(3) or lo)
        out += ["%s%d" % (m.group(1), n) for n in range(lo, hi + 1)]
    return out


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 2:
        sys.exit(__doc__)
    pcap, labels_path = args
    labels = json.load(open(labels_path))
    owner = {}
    for ip in addresses(labels.get("benign_clients") or labels.get("benign") or []):
        owner[ip] = "benign"
    for a in labels["attacks"]:
        if "clients" in a:
            for ip in addresses(a["clients"]):
                owner.setdefault(ip, "%s@global" % a["kind"])
        else:
            owner[a["client"]] = "%s@%s" % (a["kind"], a["client"])
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "http.request", "-T", "fields", "-e", "ip.src"],
                         capture_output=True, text=True, check=True, timeout=600).stdout
    counts = collections.Counter(owner.get(ip, "unlabelled") for ip in out.split())
    result = {"total": sum(counts.values()), "labels": sorted(set(owner.values())),
              "requests": dict(sorted(counts.items()))}
    if "--json" in sys.argv:
        print(json.dumps(result, indent=1))
        return
    print("%-40s %d" % ("total", result["total"]))
    for k, v in result["requests"].items():
        print("%-40s %d" % (k, v))


if __name__ == "__main__":
    main()
