#!/usr/bin/env python3
"""Example lab client for `revsci serve` (Python 3 + requests).

Uploads a measurement with its mask (or a mask id), waits for the job, downloads the frames
(zip of PNGs) and the float32 result, and prints PSNR/SSIM when ground truth was sent.

    python3 examples/client.py --measurement meas.npy --mask mask.npy --out result/
    python3 examples/client.py --measurement ../shared/data/benchmarks/drop8_cacti.mat \\
        --options '{"snapshots": 1}' --out drop8/
    python3 examples/client.py --upload-mask mask.npy            # prints the mask id
    python3 examples/client.py --measurement meas.npy --mask-id <id> --out result/

Environment: REVSCI_URL (default http://127.0.0.1:8080), REVSCI_TOKEN (bearer token, when the
server has auth on). For a self-signed HTTPS server pass --insecure, or better --ca cert.pem.
"""
import argparse
import json
import os
import sys
import time

import requests


class ServiceError(RuntimeError):
    """An HTTP error answered with an RFC 9457 problem document."""


def check(response, *expected):
    if response.status_code in expected:
        return response
    try:
        problem = response.json()
        message = f"{response.status_code} {problem.get('title')}: {problem.get('detail')}"
    except ValueError:
        message = f"{response.status_code} {response.text[:200]}"
    raise ServiceError(message)


class Client:
    def __init__(self, base_url, token=None, verify=True, timeout=60):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.verify = verify
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def url(self, path):
        return self.base + path

    def upload_mask(self, path):
        with open(path, "rb") as f:
            r = self.session.post(self.url("/v1/masks"), files={"mask": (os.path.basename(path), f)}, timeout=self.timeout)
        return check(r, 200, 201).json()["id"]

    def submit(self, measurement, mask=None, mask_id=None, ground_truth=None, options=None):
        """POST /v1/jobs; retries while the queue is full (429/503 with Retry-After)."""
        while True:
            files = {"measurement": (os.path.basename(measurement), open(measurement, "rb"))}
            if mask:
                files["mask"] = (os.path.basename(mask), open(mask, "rb"))
            if ground_truth:
                files["ground_truth"] = (os.path.basename(ground_truth), open(ground_truth, "rb"))
            data = {}
            if mask_id:
                data["mask_id"] = mask_id
            if options:
                data["options"] = json.dumps(options)
            try:
                r = self.session.post(self.url("/v1/jobs"), files=files, data=data, timeout=self.timeout)
            finally:
                for _, handle in files.values():
                    handle.close()
            if r.status_code in (429, 503) and "Retry-After" in r.headers:
                wait = int(r.headers["Retry-After"])
                print(f"server busy ({r.json().get('detail')}); retrying in {wait} s", file=sys.stderr)
                time.sleep(wait)
                continue
            return check(r, 202).json()

    def wait(self, job_id, poll=0.5):
        last = None
        while True:
            job = check(self.session.get(self.url(f"/v1/jobs/{job_id}"), timeout=self.timeout), 200).json()
            if job["state"] != last or job["state"] == "running":
                print(f"  {job['state']:<9} {100 * job['progress']:5.1f}%", file=sys.stderr, end="\r")
                last = job["state"]
            if job["state"] in ("succeeded", "failed", "cancelled"):
                print(file=sys.stderr)
                return job
            time.sleep(poll)

    def download(self, path, target):
        r = check(self.session.get(self.url(path), timeout=self.timeout, stream=True), 200)
        with open(target, "wb") as f:
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
        return target


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("REVSCI_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--token", default=os.environ.get("REVSCI_TOKEN"))
    parser.add_argument("--insecure", action="store_true", help="do not verify the HTTPS certificate")
    parser.add_argument("--ca", help="CA bundle or self-signed certificate to verify HTTPS with")
    parser.add_argument("--upload-mask", metavar="FILE", help="only upload a mask and print its id")
    parser.add_argument("--measurement", help=".npy, .npz, .mat or .png (a .mat may hold meas, mask and orig)")
    parser.add_argument("--mask")
    parser.add_argument("--mask-id")
    parser.add_argument("--ground-truth")
    parser.add_argument("--options", default="{}", help='JSON, e.g. \'{"algorithm": "gaptv", "snapshots": 1}\'')
    parser.add_argument("--out", default="revsci-result", help="folder for frames.zip and result.npy")
    parser.add_argument("--keep", action="store_true", help="keep the job on the server (default: delete it after download)")
    args = parser.parse_args()

    client = Client(args.url, args.token, verify=args.ca or not args.insecure)
    try:
        if args.upload_mask:
            print(client.upload_mask(args.upload_mask))
            return 0
        if not args.measurement:
            parser.error("--measurement is required (or --upload-mask)")
        job = client.submit(args.measurement, mask=args.mask, mask_id=args.mask_id,
                            ground_truth=args.ground_truth, options=json.loads(args.options))
        shape = job["shape"]
        print(f"job {job['id']}: {shape['snapshots']} snapshot(s) x {shape['frames_per_snapshot']} frames of "
              f"{shape['height']}x{shape['width']}, {job['algorithm']}, white level {job['white_level']} "
              f"({job['white_level_source']}), mask {job['mask_id'][:12]}...")
        job = client.wait(job["id"])
        if job["state"] != "succeeded":
            print(f"job {job['id']} {job['state']}: {(job.get('error') or {}).get('detail', '')}", file=sys.stderr)
            return 1
        os.makedirs(args.out, exist_ok=True)
        client.download(job["links"]["frames_zip"], os.path.join(args.out, "frames.zip"))
        client.download(job["links"]["result_npy"], os.path.join(args.out, "result.npy"))
        timings = job["timings"]
        print(f"done in {timings['total_seconds']:.2f} s (reconstruction {timings['reconstruction_seconds']:.2f} s); "
              f"wrote {args.out}/frames.zip and {args.out}/result.npy")
        if job["metrics"]:
            m = job["metrics"]
            print(f"PSNR {m['mean_psnr']:.2f} dB, SSIM {m['mean_ssim']:.4f} (mean over {len(m['psnr'])} frames)")
            for k, (p, s) in enumerate(zip(m["psnr"], m["ssim"])):
                print(f"  frame {k:4d}: PSNR {p:.2f} dB, SSIM {s:.4f}")
        if not args.keep:
            check(client.session.delete(client.url(f"/v1/jobs/{job['id']}"), timeout=client.timeout), 204)
        return 0
    except (ServiceError, requests.RequestException) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
