from django.http import HttpRequest

from liveadmin.navigation import nav_counts, nav_for
from liveadmin.roles import Role, user_roles


def roles(request: HttpRequest) -> dict:
    """Expose the user's roles to templates, for navigation only.

    Templates hide what a role may not use; every view still checks on the server.
    """
    held = user_roles(request.user) if hasattr(request, "user") else frozenset()
    return {
        "roles": held,
        "nav": nav_for(held),
        "nav_counts": nav_counts(held, getattr(request, "user", None)),
        "is_manager": Role.MANAGER in held,
        "is_moderator": Role.MODERATOR in held,
        "is_auditor": Role.AUDITOR in held,
        "is_admin": Role.ADMIN in held,
    }
