"""Who the CLI acts for: an API key's principal when ``COINTRAIL_API_KEY`` is set, else the
local OS user (``COINTRAIL_USER`` overrides the name) with the analyst role."""

from __future__ import annotations

import getpass
import os

from cointrail.auth import Principal, Role
from cointrail.errors import AuthError
from cointrail.interfaces.cli.common import AppState

API_KEY_VARIABLE = "COINTRAIL_API_KEY"
USER_VARIABLE = "COINTRAIL_USER"


def cli_principal(state: AppState) -> Principal:
    """The principal of this CLI invocation (AuthError for a key that matches no active key)."""
    secret = os.environ.get(API_KEY_VARIABLE, "").strip()
    if secret:
        try:
            from cointrail.auth.keys import authenticate
        except ImportError as exc:
            raise AuthError(f"{API_KEY_VARIABLE} is set but this cointrail has no key store "
                            f"(cointrail.auth.keys: {exc}); unset {API_KEY_VARIABLE} to act "
                            "as the local user") from None
        principal: Principal = authenticate(state.settings.store, secret)
        return principal
    name = os.environ.get(USER_VARIABLE, "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            raise AuthError(f"cannot tell who you are; set {USER_VARIABLE}") from None
    return Principal(name, Role.ANALYST)
