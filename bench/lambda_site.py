"""A Lambda-like import path built from the dev venv: the layer's packages plus the runtime's boto3.

The dev venv holds much more than a function sees in Lambda (moto, SAM CLI, awscrt, pyOpenSSL,
pydantic...), and botocore, urllib3 and stripe import some of those opportunistically when they
are present. Benchmarks that time imports run under `python -I -S` with only this directory
(symlinks into the venv's site-packages) on sys.path, so they import what Lambda would.
"""

import importlib.metadata as metadata
import re
import shutil
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LAYER_REQUIREMENTS = ROOT / "layers" / "payments" / "requirements.txt"
LAYER_MAKEFILE = ROOT / "layers" / "payments" / "Makefile"
# What the python3.13 Lambda runtime ships besides the standard library.
RUNTIME_PACKAGES = ("boto3",)


def layer_pins() -> list[Requirement]:
    """The requirements in the layer's requirements.txt (plain requirement lines only, no pip options)."""
    lines = (line.split("#", 1)[0].strip() for line in LAYER_REQUIREMENTS.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def _key(distribution: metadata.Distribution) -> str:
    return canonicalize_name(distribution.metadata["Name"])


def closure(roots: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the roots need, with their extras, by normalized name."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(root, frozenset(root.extras)) for root in roots]
    while pending:
        requirement, extras = pending.pop()
        distribution = metadata.distribution(requirement.name)
        key = _key(distribution)
        if key in found and not extras:
            continue
        found[key] = distribution
        for raw in distribution.requires or []:
            dependency = Requirement(raw)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                pending.append((dependency, frozenset(dependency.extras)))
    return found


def layer_distributions() -> dict[str, metadata.Distribution]:
    """The distributions the layer installs: its pins, without their dependencies (`--no-deps`)."""
    distributions = (metadata.distribution(pin.name) for pin in layer_pins())
    return {_key(distribution): distribution for distribution in distributions}


def removed_from_layer() -> list[str]:
    """The paths, relative to the layer's python/, that its Makefile deletes after installing."""
    paths = []
    for line in LAYER_MAKEFILE.read_text().splitlines():
        if line.strip().startswith("rm "):
            paths += re.findall(r'"\$\(SITE\)"?/([^"\s]+)', line)
    return paths


def modules_removed_from_layer() -> tuple[str, ...]:
    """The importable packages among `removed_from_layer()`, as module names."""
    site = Path(metadata.distribution("stripe").locate_file(""))
    return tuple(path.replace("/", ".") for path in removed_from_layer() if (site / path / "__init__.py").exists())


def runtime_distributions() -> dict[str, metadata.Distribution]:
    return closure([Requirement(name) for name in RUNTIME_PACKAGES])


def top_level_paths(distribution: metadata.Distribution) -> set[Path]:
    """The importable files and directories a distribution installed (no dist-info, no scripts)."""
    paths = set()
    for file in distribution.files or []:
        first = file.parts[0]
        if first == ".." or first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        paths.add(Path(distribution.locate_file(first)))
    return paths


def build(target: Path) -> Path:
    """(Re)create `target` as a directory of symlinks: the layer's distributions plus the runtime's boto3."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for distribution in {**runtime_distributions(), **layer_distributions()}.values():
        for path in top_level_paths(distribution):
            link = target / path.name
            if path.exists() and not link.exists():
                link.symlink_to(path)
    return target
