"""The webhook's hot path compiled to C with mypyc, and the check that the build is current.

``build()`` (``make setup``, ``make run`` and ``make test`` run it) compiles MODULES
(the matcher and webhooks/hotpath.py) into build/hotpath/, beside a stamp: the SHA-256
of their sources, mypyc's version and the interpreter's. On import, the ``webhooks`` and
``webhooks.matching`` packages use that build only when the stamp matches the sources as
they are now, so an edited module is never shadowed by a build of its older self: it
runs as Python until the next build. ``LIVEADMIN_PURE_PYTHON=1`` runs the Python sources
whatever is built.

Why: the same code compiled answers the before-send webhook's matching in about 40% less
time (bench/webhook_load.py's body, 21,100 rules: ``RuleSet.check`` 36-47 against
64-76 µs, same machine, alternating runs), with nothing rewritten and no compiled code
kept in the repository. Without a C compiler the build fails and everything runs as
Python; tests/test_matching.py says which one a test run used.

EXTENSIONS are hand-written C built the same way, for the one job mypyc cannot speed up:
a pass over every character of a text (the folding of plain text, _plainfold.c). The
stamp covers their sources too, and without the build normalise.py does the same in
Python (a test compares the two).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sys
import sysconfig
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / "build" / "hotpath"
STAMP = "SOURCES.sha256"

# The modules compiled: the matcher (every module of webhooks.matching but __init__,
# which stays Python to choose between the two) and the hot path itself.
MODULES = (
    "webhooks.hotpath",
    "webhooks.matching.charclass",
    "webhooks.matching.fold",
    "webhooks.matching.message",
    "webhooks.matching.normalise",
    "webhooks.matching.readings",
    "webhooks.matching.regex_safety",
    "webhooks.matching.ruleset",
    "webhooks.matching.verdict",
)


# Hand-written C, built beside them: the one-pass folding of plain text
# (webhooks/matching/_plainfold.c; normalise.py says why).
EXTENSIONS = ("webhooks.matching._plainfold",)


def _source(module: str) -> Path:
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


@functools.cache  # both packages ask on import
def source_digest() -> str:
    digest = hashlib.sha256()
    digest.update(sys.version.encode())
    digest.update((sysconfig.get_config_var("EXT_SUFFIX") or "").encode())
    for name in MODULES:
        digest.update(name.encode())
        digest.update(_source(name).read_bytes())
    for name in EXTENSIONS:
        digest.update(name.encode())
        digest.update(_source(name).with_suffix(".c").read_bytes())
    try:
        from importlib.metadata import version

        digest.update(version("mypy").encode())
    except Exception:  # mypy not installed: no build can be current
        digest.update(b"no mypyc")
    return digest.hexdigest()


def use_if_current(
    package: str, package_path: list[str], build_dir: Path = BUILD_DIR
) -> bool:
    """Put the compiled modules of ``package`` first on its search path (``__path__``)
    when the build's stamp matches the sources; else leave the Python sources in charge.
    True when compiled."""
    if os.environ.get("LIVEADMIN_PURE_PYTHON"):
        return False
    try:
        built_for = (build_dir / STAMP).read_text().strip()
    except OSError:
        return False
    if built_for != source_digest():
        logger.warning(
            "the compiled hot path in %s is older than its sources; %s runs as Python "
            "(make setup builds it again)",
            build_dir,
            package,
        )
        return False
    # mypyc's shared runtime is a top-level module of the build.
    if str(build_dir) not in sys.path:
        sys.path.append(str(build_dir))
    package_path.insert(0, str(build_dir.joinpath(*package.split("."))))
    return True


def build() -> None:
    """Compile MODULES into BUILD_DIR and write the stamp last."""
    import warnings

    from mypyc.build import mypycify
    from setuptools import Extension, setup

    # setuptools reads pyproject.toml and warns that its [tool.setuptools] is in beta.
    warnings.filterwarnings("ignore", module="setuptools")

    digest = source_digest()
    shutil.rmtree(BUILD_DIR, ignore_errors=True)
    temp = ROOT / "build" / "hotpath-temp"
    os.chdir(ROOT)  # mypyc names the modules from paths relative to the root
    setup(
        name="liveadmin-hotpath",
        ext_modules=mypycify(
            [str(_source(name).relative_to(ROOT)) for name in MODULES],
            opt_level="3",
            target_dir=str(temp / "c"),
        )
        + [
            Extension(name, [str(_source(name).with_suffix(".c").relative_to(ROOT))])
            for name in EXTENSIONS
        ],
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
