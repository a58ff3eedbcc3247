"""`make bench`: run every benchmark, write bench/results/<machine>-<date>.json, print a table.

Benchmarks are modules of this package with a ``run(out_dir) -> dict`` function; each measures
its ratios inside one run so the numbers compare on the same machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import socket
import tempfile
import time
from pathlib import Path

BENCHMARKS = ("render", "ingest", "shards", "train")
RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=list(BENCHMARKS), help="benchmarks to run")
    args = parser.parse_args()
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine(), "results": {}}
    import torch

    RESULTS.mkdir(parents=True, exist_ok=True)
    label = "gpu" if report["machine"]["cuda"] else f"cpu{report['machine']['cores']}"
    path = RESULTS / f"{label}-{dt.date.today().isoformat()}.json"
    if path.exists():  # the same machine and day: keep the benchmarks this run does not redo
        report["results"] = json.loads(path.read_text()).get("results", {})
    threads = torch.get_num_threads()
    for name in args.only:
        module = importlib.import_module(f"bench.{name}")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"geopre-bench-{name}-") as tmp:
            report["results"][name] = module.run(Path(tmp))
        report["results"][name]["bench_seconds"] = round(time.perf_counter() - start, 1)
        torch.set_num_threads(threads)  # a benchmark that pins threads must not slow the next one
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"machine: {report['machine']['cpu']} ({report['machine']['cores']} cores), cuda: {report['machine']['cuda']}")
    print(f"{'benchmark':<10} {'measure':<52} {'value':>12}")
    for name, values in report["results"].items():
        for key, value in _flat(values).items():
            print(f"{name:<10} {key:<52} {str(value):>12}")
    print(f"written: {path}")


def _flat(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


if __name__ == "__main__":
    main()
