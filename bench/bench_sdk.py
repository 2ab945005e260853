"""The SDK on its own: how long `import modelyard` takes and how much a client install weighs.

    .venv/bin/python -m bench.bench_sdk [--runs 15] [--no-server-install]

Import times are medians over fresh interpreters (each imports once, cold caches aside), next
to `import httpx` as a reference. Sizes come from fresh virtual environments into which this
source tree is installed from the package index: without extras (the client), then with
`[server]` for comparison. Nothing is installed into the running environment.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLING = {"pip", "setuptools", "_distutils_hack", "pkg_resources", "__pycache__"}

IMPORT_TIMER = """
import sys, time
start = time.perf_counter()
import {module}
took = time.perf_counter() - start
print(took, len(sys.modules))
"""


def import_time(python: str, module: str, runs: int) -> tuple[float, int]:
    """Median seconds to import ``module`` in a fresh interpreter, and the modules it loads."""
    times, loaded = [], 0
    for _ in range(runs):
        out = subprocess.run(
            [python, "-c", IMPORT_TIMER.format(module=module)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        times.append(float(out[0]))
        loaded = int(out[1])
    return statistics.median(times), loaded


def fresh_install(where: Path, extras: str = "") -> Path:
    """A new virtual environment with this source tree installed (with ``extras``)."""
    source = where / "source"
    if not source.exists():
        source.mkdir()
        shutil.copy(ROOT / "pyproject.toml", source)
        shutil.copy(ROOT / "README.md", source)
        ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    venv = where / f"venv{extras or '-client'}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    target = f"{source}[{extras}]" if extras else str(source)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", target],
        check=True,
        capture_output=True,
    )
    return python


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_sizes(python: Path) -> dict[str, int]:
    """Bytes per top-level entry of the environment's site-packages, tooling left out."""
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    sizes: dict[str, int] = {}
    for entry in Path(site).iterdir():
        name = entry.name.split("-")[0].removesuffix(".dist").lower()
        if name in TOOLING or entry.name.startswith(("pip-", "setuptools-")):
            continue
        sizes[name] = sizes.get(name, 0) + tree_size(entry)
    return sizes


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-server-install", action="store_true")
    args = parser.parse_args()
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sdk-") as tmp:
        client = fresh_install(Path(tmp))
        for module in ("httpx", "modelyard", "modelyard.app"):
            python = sys.executable if module == "modelyard.app" else str(client)
            took, loaded = import_time(python, module, args.runs)
            result[f"import {module}"] = {"median_ms": round(took * 1000, 1), "modules": loaded}
        sizes = site_sizes(client)
        result["client install"] = {
            "modelyard alone": mb(sizes.get("modelyard", 0)),
            "with its dependencies": mb(sum(sizes.values())),
            "largest": {k: mb(v) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:6]},
        }
        if not args.no_server_install:
            server = site_sizes(fresh_install(Path(tmp), "server"))
            result["[server] install"] = {"with its dependencies": mb(sum(server.values()))}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
