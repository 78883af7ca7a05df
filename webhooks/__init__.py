"""Before-send webhook, blocklists and moderation.

The hot path (webhooks/hotpath.py and the matcher) may run compiled: see
webhooks/compiled.py.
"""

from webhooks import compiled as _compiled

# Before any module of the package is imported: they are looked up in the build first.
COMPILED = _compiled.use_if_current(__name__, __path__)
