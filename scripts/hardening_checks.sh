#!/usr/bin/env bash
# Hostile requests against a real release `revsci serve` on loopback (bounded, stops itself), with
# the figures the hardening bar asks for:
#  1. the two requests that once killed the process (a NaN frame, a 65,544-frame zip) and their
#     kin: each answered, then /healthz and a normal job;
#  2. with auth on, a 400 MB upload without a token (with and without Expect: 100-continue):
#     the status, whether 100 Continue was sent, and the server's peak RSS (VmHWM);
#  3. 2-3 MB compressed .npz and .mat uploads declaring 2 GiB arrays: status, seconds, peak RSS.
# Usage: scripts/hardening_checks.sh [PORT]   (release build expected at .build/release/revsci)
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-18190}
bin=.build/release/revsci
[ -x "$bin" ] || swift build -c release --product revsci
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {   # start CONFIG_JSON: a fresh server on a fresh data dir
  rm -rf "$work/store"
  echo "$1" > "$work/server.json"
  "$bin" serve --config "$work/server.json" --host 127.0.0.1 --port "$port" --data-dir "$work/store" > "$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start"; cat "$work/server.log"; exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
peak() { awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$server/status"; }

python3 - "$work" <<'EOF'
import io, sys, zipfile, numpy as np, scipy.io
w = sys.argv[1]
np.save(f"{w}/mask8.npy", (np.arange(4 * 8 * 8).reshape(4, 8, 8) % 2).astype(np.float32))
np.save(f"{w}/huge_meas.npy", np.full((8, 8), 1e30, np.float32))
np.save(f"{w}/mask888.npy", (np.arange(512).reshape(8, 8, 8) % 3 == 0).astype(np.float32))
np.save(f"{w}/meas8193.npy", (np.arange(8193 * 64).reshape(8193, 8, 8) % 5 * 0.4).astype(np.float32))
rng = np.random.default_rng(1)
mask = (rng.random((8, 64, 64)) < 0.5).astype(np.float32)
x = np.clip(0.5 + 0.3 * np.sin(np.arange(8 * 64 * 64).reshape(8, 64, 64) / 40.0), 0, 1).astype(np.float32)
np.save(f"{w}/mask64.npy", mask)
np.save(f"{w}/meas64.npy", (mask * x).sum(0).astype(np.float32))
with open(f"{w}/big.bin", "wb") as f:
    f.truncate(400_000_000)
# Zeros deflate about 1000:1: 2 GiB declared in a couple of MB.
np.savez_compressed(f"{w}/bomb.npz", meas=np.zeros((8, 8192, 8192), np.float32))
scipy.io.savemat(f"{w}/bomb.mat", {"meas": np.zeros((16384, 16384, 8), np.uint8)}, do_compression=True)
EOF
url=http://127.0.0.1:$port

echo "== 1. requests that once crashed the server (auth off)"
start '{"access_log": false}'
code=$(curl -s -o "$work/r1" -w '%{http_code}' -F measurement=@"$work/huge_meas.npy" -F mask=@"$work/mask8.npy" \
  -F 'options={"white_level": 1e-30}' "$url/v1/jobs")
echo "values 1e30 / white_level 1e-30: $code $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["detail"][:110])' "$work/r1")"
id=$(curl -sf -F measurement=@"$work/meas8193.npy" -F mask=@"$work/mask888.npy" -F 'options={"iterations": 1}' "$url/v1/jobs" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 600); do
  state=$(curl -sf "$url/v1/jobs/$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')
  [ "$state" = succeeded ] || [ "$state" = failed ] && break; sleep 0.2
done
code=$(curl -s -o "$work/frames.zip" -w '%{http_code}' "$url/v1/jobs/$id/frames.zip")
echo "8193 snapshots x 8 frames, frames.zip: $code, $(python3 -c 'import zipfile,sys; z = zipfile.ZipFile(sys.argv[1]); print(len(z.namelist()), "entries, testzip:", z.testzip())' "$work/frames.zip")"
echo "healthz after: $(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")"
id=$(curl -sf -F measurement=@"$work/meas64.npy" -F mask=@"$work/mask64.npy" -F 'options={"iterations": 20}' "$url/v1/jobs" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
sleep 2
echo "a normal job after: $(curl -sf "$url/v1/jobs/$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')"
stop

echo "== 2. auth on: a 400 MB upload without a token"
start '{"access_log": false, "max_body_mib": 1024, "auth": {"enabled": true, "tokens": ["lab-token"]}}'
echo "idle server peak RSS: $(peak)"
out=$(curl -s -v -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' --data-binary @"$work/big.bin" "$url/v1/masks" 2>&1 || true)
echo "with Expect: 100-continue: $(echo "$out" | tail -c 4), 100 Continue sent: $(echo "$out" | grep -c '< HTTP/1.1 100' || true); peak RSS $(peak)"
python3 - "$port" "$work/big.bin" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 400000000\r\n\r\n")
sent, chunk = 0, b"\0" * (1 << 20)
try:
    while sent < 400_000_000:
        s.sendall(chunk); sent += len(chunk)
except OSError:
    pass
s.settimeout(5)
answer = b""
try:
    while True:
        part = s.recv(65536)
        if not part: break
        answer += part
except OSError:
    pass
print(f"without Expect: {answer[:12].decode(errors='replace')}..., the server stopped the body after {sent >> 20} MiB sent")
EOF
echo "peak RSS after both: $(peak)"
stop

echo "== 3. compressed uploads declaring 2 GiB"
start '{"access_log": false}'
for f in bomb.npz bomb.mat; do
  t0=$(date +%s.%N)
  code=$(curl -s -o "$work/r3" -w '%{http_code}' -F measurement=@"$work/$f" -F mask=@"$work/mask8.npy" "$url/v1/jobs")
  t1=$(date +%s.%N)
  printf '%s (%s bytes): %s in %.3f s: %s\n' "$f" "$(stat -c %s "$work/$f")" "$code" "$(echo "$t1 - $t0" | bc)" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["detail"][:120])' "$work/r3")"
done
echo "peak RSS: $(peak); healthz: $(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")"
stop
