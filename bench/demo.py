"""The demo's accuracy and wall time: runs `plait demo` as a user would.

.venv/bin/python bench/demo.py [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp()) / "demo"
    command = [sys.executable, "-m", "plait.cli", "demo", "--out", str(out), "--epochs", str(args.epochs)]
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"plait demo failed with exit code {result.returncode}")
    metrics = json.loads((out / "metrics.json").read_text())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"epochs run: {metrics['epochs']} (best {metrics['best_epoch']})")
    print(f"test accuracy: {metrics['test']['accuracy']:.4f}, macro_f1: {metrics['test']['macro_f1']:.4f}")
    print(f"wall time (whole command, start-up and data loading included): {wall:.0f} s")
    print(
        f"training time: {metrics['train_seconds']:.0f} s, "
        f"{metrics['train_samples_per_second']:.0f} training samples/s (validation included)"
    )


if __name__ == "__main__":
    main()
