#!/usr/bin/env bash
# Makes a capture of real traffic between real clients and servers, one application at
# a time, with the capture kit (scripts/capture-kit/: kit.sh is the shared set-up,
# apps/APP.sh what is specific to APP). See scripts/README.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kit=$root/scripts/capture-kit

usage() {
    cat <<USAGE
Usage: sudo scripts/make-capture.sh APP [OUT] [options]

Makes one capture of APP's traffic inside network namespaces made for it (veth pairs,
addresses 10.77-10.84.0.0/24 that exist only there; removed on exit, also on failure).

APP:
USAGE
    local f
    for f in "$kit"/apps/*.sh; do
        printf '  %-11s %s\n' "$(basename "$f" .sh)" "$(sed -n 's/^APP_DESC="\(.*\)"$/\1/p' "$f")"
    done
    cat <<USAGE

OUT: the pcap to write (labelled and padded captures are gzipped to OUT.gz); for
  basic, a directory. Default: the file in captures/ (bench: bench-data/api-bench.pcap);
  with --scale other than 1, a new directory under /tmp, so trials never overwrite
  the committed captures.

Options:
  --duration S     timeline length in seconds (default 600; bench 20; attacks and
                   padded have fixed timelines, wagtail too)
  --scale F        run the timeline F times as fast (F < 1: quicker trials; jsonserver,
                   kinto, synapse)
  --labels FILE    where the labels go (default: OUT without .pcap, plus .labels.json)
  --keep-logs DIR  copy the drivers' request logs and the servers' logs to DIR
  --keep-work      keep the work directory (printed on exit)
  -h, --help       this text

Needs root, iproute2, ethtool, tcpdump, and per APP the tools and the server install
that apps/APP.sh names in its header (it checks them first and installs nothing).
After a run: scripts/capture-kit/count-labels.py OUT[.gz] LABELS counts the HTTP
requests per label.
USAGE
}

APP="" OUT="" LABELS="" DURATION="" SCALE=1 KIT_KEEP_LOGS="" KIT_KEEP_WORK=""
while [ $# -gt 0 ]; do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --duration) DURATION=$2; shift 2 ;;
        --scale) SCALE=$2; shift 2 ;;
        --labels) LABELS=$2; shift 2 ;;
        --keep-logs) KIT_KEEP_LOGS=$2; shift 2 ;;
        --keep-work) KIT_KEEP_WORK=1; shift ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *)
            if [ -z "$APP" ]; then APP=$1
            elif [ -z "$OUT" ]; then OUT=$1
            else echo "too many arguments (see --help)" >&2; exit 2; fi
            shift ;;
    esac
done
[ -n "$APP" ] || { usage >&2; exit 2; }
[ -f "$kit/apps/$APP.sh" ] || { echo "no application '$APP' (see --help)" >&2; exit 2; }
[[ $SCALE =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "--scale wants a number" >&2; exit 2; }
[[ -z $DURATION || $DURATION =~ ^[0-9]+$ ]] || { echo "--duration wants whole seconds" >&2; exit 2; }
scaled=$(awk -v s="$SCALE" 'BEGIN { print (s == 1 ? "" : "yes") }')

APP_NEEDS="" APP_FILES="" APP_TIMELINE=""
# shellcheck source=capture-kit/kit.sh
. "$kit/kit.sh"
# shellcheck source=/dev/null
. "$kit/apps/$APP.sh"

# APP_TIMELINE: "scaled" takes --duration and --scale, "duration" only --duration, "" neither
if [ -n "$DURATION" ] && [ -z "$APP_TIMELINE" ]; then kit_die "$APP has a fixed timeline: no --duration"; fi
if [ -n "$scaled" ] && [ "$APP_TIMELINE" != scaled ]; then kit_die "$APP cannot scale its timeline: no --scale"; fi
if [ -z "$OUT" ] && [ -n "$scaled" ]; then
    OUT=$(mktemp -d "/tmp/$APP-trial.XXXXXX")/$APP.pcap
fi
app_defaults
DURATION=${DURATION:-600}
OUT=$(realpath -m "$OUT")
LABELS=$(realpath -m "${LABELS:-${OUT%.pcap}.labels.json}")
mkdir -p "$(dirname "$OUT")" "$(dirname "$LABELS")"
export OUT LABELS DURATION SCALE KIT_KEEP_LOGS KIT_KEEP_WORK

kit_need_root
# shellcheck disable=SC2086
kit_need ip ethtool tcpdump $APP_NEEDS
for f in $APP_FILES; do kit_need_file "$f" "see the header of scripts/capture-kit/apps/$APP.sh"; done

app_run
