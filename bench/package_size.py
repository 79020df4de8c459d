"""Unpacked size of each function and of the layer, as `sam build` lays them out.

`sam build` runs in a temporary directory (it needs python3.13 on PATH and the package index for
the layer's requirements). When it cannot run, the sizes are estimated from the distributions
installed in the dev venv, and the report says so and why.
"""

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from bench import lambda_site
from local_runtime.template import ROOT, Template

MIB = 1024 * 1024


@dataclass
class PackageSizes:
    method: str  # "sam build" or why it is an estimate
    functions: dict[str, int]  # logical id -> bytes
    layer: int
    layer_parts: dict[str, int] = field(default_factory=dict)  # top-level entry -> bytes

    @property
    def max_function(self) -> int:
        return max(self.functions.values())


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def measure(timeout: float = 600) -> PackageSizes:
    try:
        return _sam_build(timeout)
    except (OSError, subprocess.SubprocessError, RuntimeError) as why:
        return estimate(f"estimated from the dev venv's installed distributions: sam build failed ({why})")


def _sam_build(timeout: float) -> PackageSizes:
    finder = subprocess.run([str(ROOT / "scripts" / "find-python3.13")], capture_output=True, text=True, check=False)
    if finder.returncode != 0:
        raise RuntimeError("no python3.13 on this machine")
    sam = ROOT / ".venv" / "bin" / "sam"
    if not sam.exists():
        raise RuntimeError("no SAM CLI in .venv")
    environment = {
        **os.environ,
        "PATH": f"{Path(finder.stdout.strip()).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    with tempfile.TemporaryDirectory(prefix="bench-sam-build-") as tmp:
        build = Path(tmp) / "build"
        command = [str(sam), "build", "--template-file", str(ROOT / "template.yaml"),
                   "--build-dir", str(build), "--cache-dir", str(Path(tmp) / "cache")]  # fmt: skip
        done = subprocess.run(command, cwd=tmp, env=environment, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(
                (done.stderr or done.stdout).strip().splitlines()[-1:] or ["exit " + str(done.returncode)]
            )
        template = Template("stripe-payments")
        functions = {logical_id: tree_size(build / logical_id) for logical_id in template.functions()}
        (layer_id,) = template.of_type("AWS::Serverless::LayerVersion")
        layer_root = build / layer_id
        parts = {entry.name: tree_size(entry) for entry in (layer_root / "python").iterdir()}
        return PackageSizes("sam build", functions, tree_size(layer_root), parts)


def estimate(method: str) -> PackageSizes:
    template = Template("stripe-payments")
    functions = {logical_id: tree_size(spec.code_dir) for logical_id, spec in template.functions().items()}
    removed = lambda_site.removed_from_layer()
    parts: dict[str, int] = {}
    for distribution in lambda_site.layer_distributions().values():
        for file in distribution.files or []:
            if file.parts[0] == ".." or any(fnmatch(file.as_posix(), f"{path}*") for path in removed):
                continue
            parts[file.parts[0]] = parts.get(file.parts[0], 0) + (file.size or 0)
    domain = ROOT / "layers" / "payments" / "payments"
    parts["payments"] = sum(f.stat().st_size for f in domain.rglob("*.py"))
    return PackageSizes(method, functions, sum(parts.values()), parts)
