"""The matcher compiled to C with mypyc, and the check that the compiled build is current.

``build()`` (``make setup``, ``make run`` and ``make test`` run it) compiles the matcher's modules into build/matcher/, beside a stamp: the SHA-256 of
their sources, mypyc's version and the interpreter's. On import, ``webhooks.matching``
uses that build only when the stamp matches the sources as they are now, so an edited
module is never shadowed by a build of its older self: it runs as Python until the next
build. ``LIVEADMIN_PURE_PYTHON=1`` runs the Python sources whatever is built.

Why: the same code compiled answers the before-send webhook's matching in about 40% less
time (bench/webhook_load.py's body, 21,100 rules: ``RuleSet.check`` 36-47 against
64-76 µs, same machine, alternating runs), with nothing rewritten and no compiled code
kept in the repository. Without a C compiler the build fails and everything runs as
Python; tests/test_matching.py says which one a test run used.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import sysconfig
from pathlib import Path

logger = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent.parent
BUILD_DIR = ROOT / "build" / "matcher"
STAMP = "SOURCES.sha256"

# The modules compiled: every module of the package but this one and __init__ (which
# must stay Python to choose between the two).
MODULES = (
    "charclass",
    "fold",
    "message",
    "normalise",
    "readings",
    "regex_safety",
    "ruleset",
    "verdict",
)


def source_digest() -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update((sysconfig.get_config_var("EXT_SUFFIX") or "").encode())
    for name in MODULES:
        digest.update(name.encode())
        digest.update((PACKAGE / f"{name}.py").read_bytes())
    try:
        from importlib.metadata import version

        digest.update(version("mypy").encode())
    except Exception:  # mypy not installed: no build can be current
        digest.update(b"no mypyc")
    return digest.hexdigest()


def use_if_current(package_path: list[str], build_dir: Path = BUILD_DIR) -> bool:
    """Put the compiled modules first on the package's search path when their stamp
    matches the sources; else leave the Python sources in charge. True when compiled."""
    if os.environ.get("LIVEADMIN_PURE_PYTHON"):
        return False
    try:
        built_for = (build_dir / STAMP).read_text().strip()
    except OSError:
        return False
    if built_for != source_digest():
        logger.warning(
            "the compiled matcher in %s is older than its sources; running the Python "
            "sources (make setup builds it again)",
            build_dir,
        )
        return False
    # mypyc's shared runtime is a top-level module of the build.
    if str(build_dir) not in sys.path:
        sys.path.append(str(build_dir))
    package_path.insert(0, str(build_dir / "webhooks" / "matching"))
    return True


def build() -> None:
    """Compile MODULES into BUILD_DIR and write the stamp last."""
    import warnings

    from mypyc.build import mypycify
    from setuptools import setup

    # setuptools reads pyproject.toml and warns that its [tool.setuptools] is in beta.
    warnings.filterwarnings("ignore", module="setuptools")

    digest = source_digest()
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    temp = ROOT / "build" / "matcher-temp"
    os.chdir(ROOT)  # mypyc names the modules from paths relative to the root
    setup(
        name="liveadmin-matcher",
        ext_modules=mypycify(
            [f"webhooks/matching/{name}.py" for name in MODULES],
            opt_level="3",
            target_dir=str(temp / "c"),
        ),
        script_args=[
            "--quiet",
            "build_ext",
            "--build-lib",
            str(BUILD_DIR),
            "--build-temp",
            str(temp),
        ],
    )
    (BUILD_DIR / STAMP).write_text(digest + "\n")
