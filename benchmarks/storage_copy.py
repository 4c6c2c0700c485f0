"""What `--storage` costs the driver: the time to copy a run's record files to an S3 endpoint.

Starts moto's S3 server on loopback (the test suite's stand-in for S3; a real bucket adds the
network's round trips), copies the record files of RUN_DIR there `--repeats` times with the same
`Storage.push` the search calls at every phase's and trial's end, then times how long a copy takes
to give up once the server is gone. Writes one JSON.

    python benchmarks/storage_copy.py benchmarks/results/cifar10_16px --json benchmarks/results/storage_copy.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from trilevel.store.run_store import RECORD_FILES
from trilevel.search.storage import Storage


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client("s3").create_bucket(Bucket="bench")
        storage = Storage("s3://bench/runs", args.run_dir.name)
        storage.check()
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            assert storage.push(args.run_dir)
            seconds.append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait(timeout=10)
    start = time.perf_counter()
    answered = storage.push(args.run_dir)
    down = time.perf_counter() - start
    files = [args.run_dir / n for n in RECORD_FILES if (args.run_dir / n).is_file()]
    out = {
        "run_dir": str(args.run_dir), "files": len(files), "bytes": sum(f.stat().st_size for f in files),
        "copy_seconds": sorted(seconds), "median_seconds": statistics.median(seconds),
        "down_seconds": down, "down_answered": answered,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d %H:%M"), "endpoint": "moto_server on loopback",
    }
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
