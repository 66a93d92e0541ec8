#!/usr/bin/env bash
# Contract and load checks against a real `revsci serve` on loopback (bounded, stops itself):
#  1. schemathesis fuzzes every operation of openapi.yaml (positive_data_acceptance is left out:
#     a schema-valid "binary" part of random bytes is not a valid .npy/.mat/PNG, and the server
#     is right to answer 415/422);
#  2. wrk polls one job's status for 10 s with 16 connections while a long GAP-TV job runs,
#     and prints requests/s and latency percentiles.
# Usage: scripts/api_checks.sh [PORT]   (release build expected at .build/release/revsci)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-18080}
bin=.build/release/revsci
[ -x "$bin" ] || swift build -c release --product revsci
command -v schemathesis >/dev/null || python3 -m pip install -q schemathesis
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
data=$(mktemp -d)
"$bin" serve --host 127.0.0.1 --port "$port" --data-dir "$data/store" > "$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done

echo "== schemathesis"
schemathesis run openapi.yaml --url "http://127.0.0.1:$port" --max-examples 50 --workers 1 \
  --exclude-checks positive_data_acceptance | tail -12

echo "== status polls while a reconstruction runs"
job=$(curl -sf -F measurement=@../shared/data/benchmarks/traffic48_cacti.mat -F 'options={"iterations": 3000}' \
  "http://127.0.0.1:$port/v1/jobs" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
sleep 2
curl -sf "http://127.0.0.1:$port/v1/jobs/$job" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("job", d["state"], "progress", round(d["progress"], 3))'
wrk -t2 -c16 -d10s --latency "http://127.0.0.1:$port/v1/jobs/$job" | grep -E "Latency|50%|90%|99%|Requests/sec"
curl -sf "http://127.0.0.1:$port/v1/jobs/$job" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("job still", d["state"], "progress", round(d["progress"], 3))'
curl -s -X DELETE "http://127.0.0.1:$port/v1/jobs/$job" -o /dev/null
