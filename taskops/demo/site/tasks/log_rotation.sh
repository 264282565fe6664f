#!/bin/sh
# LogRotation: simulate web traffic in access.log and rotate it into gzip files.
#
# Run directly by the engine; its parameters arrive as environment variables of the same
# names. Each run appends LINES_PER_RUN request lines to $TASKOPS_DATA_DIR/demo/logs/access.log;
# once the log is larger than MAX_KB it becomes access.log.1.gz (older ones shift to .2.gz,
# .3.gz, ...) and only the newest KEEP rotated files are kept.
set -eu

LINES_PER_RUN="${LINES_PER_RUN:-200}"
MAX_KB="${MAX_KB:-64}"
KEEP="${KEEP:-5}"
DATA_DIR="${TASKOPS_DATA_DIR:-$(dirname "$0")/../data}"
LOGS="$DATA_DIR/demo/logs"
LOG="$LOGS/access.log"

say() { echo "[$(date '+%Y-%m-%d %H:%M:%S')] $*"; }

mkdir -p "$LOGS"
awk -v n="$LINES_PER_RUN" -v seed="$(($(date +%s) + $$))" -v now="$(date '+%d/%b/%Y:%H:%M:%S %z')" 'BEGIN {
    srand(seed)
    split("/apps/WebHostMetrics/api/v1/metrics /apps/vault/api/v1/status /apps/WebHostTaskManagement/api/v1/tasks /apps/WebHostTaskManagement/api/v1/jobs /index.html /favicon.ico", paths, " ")
    split("200 200 200 200 200 304 404 500", codes, " ")
    for (i = 1; i <= n; i++)
        printf "10.0.0.%d - - [%s] \"GET %s HTTP/1.1\" %s %d\n", int(rand() * 254) + 1, now,
            paths[int(rand() * 6) + 1], codes[int(rand() * 8) + 1], int(rand() * 9000) + 100
}' >> "$LOG"
size=$(wc -c < "$LOG")
say "appended $LINES_PER_RUN requests to access.log ($size bytes, rotating above $MAX_KB KiB)"

if [ "$size" -gt $((MAX_KB * 1024)) ]; then
    i=$KEEP
    while [ "$i" -gt 1 ]; do
        prev=$((i - 1))
        if [ -f "$LOG.$prev.gz" ]; then mv -f "$LOG.$prev.gz" "$LOG.$i.gz"; fi
        i=$prev
    done
    gzip -c "$LOG" > "$LOG.1.gz.partial"
    mv -f "$LOG.1.gz.partial" "$LOG.1.gz"
    : > "$LOG"
    say "rotated access.log ($size bytes) to access.log.1.gz"
fi

# Rotated files beyond KEEP (left over when KEEP was lowered) go.
kept=0
for old in "$LOG".*.gz; do
    n=${old#"$LOG".}
    n=${n%.gz}
    case "$n" in *[!0-9]* | "") continue ;; esac
    if [ "$n" -gt "$KEEP" ]; then
        rm -f "$old"
        say "deleted $(basename "$old")"
    else
        kept=$((kept + 1))
    fi
done
say "$kept rotated files kept (KEEP=$KEEP)"
