#!/bin/sh
# Import throughput of `auth-admin import`: ROWS generated accounts (default
# 1,000,000, JSON Lines, one PBKDF2 hash shared by all rows, as parsing it is part of the
# per-row cost) into a throwaway local PostgreSQL, with the importer's peak RSS from
# /usr/bin/time. Then a second run of the same file (every row already present), and an
# export. Needs a release build:
#   cargo build --release -p auth-admin && cargo build -p tempdb
#   ./target/debug/tempdb -- sh bench/import.sh [ROWS]
set -eu
ROWS=${1:-1000000}
BIN=${AUTH_ADMIN:-./target/release/auth-admin}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
FILE=$DIR/users.jsonl
python3 - "$ROWS" "$FILE" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
h = "$pbkdf2-sha256$i=600000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$yQ6AqqY0s9/6nxcGqWgfbI0k3JQvsqEHYYfGAFD4bFQ"
with open(path, "w") as f:
    for i in range(n):
        f.write('{"username":"user%d","email":"user%d@example.com","full_name":"User %d","password_hash":"%s","created_at":"2024-01-01T00:00:00Z"}\n' % (i, i, i, h))
PY
echo "file: $ROWS rows, $(du -h "$FILE" | cut -f1)"
"$BIN" migrate >/dev/null
run() {
    label=$1; shift
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$DIR/rss" "$@" >"$DIR/out" 2>"$DIR/err" || true
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc)
    echo "$label: $(cat "$DIR/out" | tail -1)"
    grep "read and checked" "$DIR/err" | sed "s/^auth-admin: /$label: /" || true
    echo "$label: ${secs}s, $(echo "$ROWS / $secs" | bc) rows/s, peak RSS $(( $(cat "$DIR/rss") / 1024 )) MiB"
}
run "import" "$BIN" import "$FILE"
run "re-run (all present)" "$BIN" import "$FILE"
run "export" sh -c "$BIN export > $DIR/export.jsonl"
echo "export: $(wc -l < "$DIR/export.jsonl") lines"
