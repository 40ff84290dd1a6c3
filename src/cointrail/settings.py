"""Typed settings, read once from the environment (prefix ``COINTRAIL_``) and CLI options.

The one place where defaults live; nothing else reads environment variables.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """cointrail's settings. Every field can be set as ``COINTRAIL_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="COINTRAIL_", extra="ignore")

    store: Path = Field(default=Path("cointrail-data"), description="Store directory.")
    chain: str = Field(default="bitcoin", description="Default chain name.")
    network: str = Field(default="mainnet", description="Default network name.")
    confirmations: int = Field(
        default=6, ge=0, description="Blocks below the tip that analyses treat as final."
    )
    rpc_timeout: float = Field(default=30.0, gt=0, description="Node RPC timeout in seconds.")
    store_wait: float = Field(
        default=10.0, ge=0, le=3600,
        description="Seconds a command or API request waits for a chain's database that "
                    "another process holds (sync --follow taking a block) before it gives up.")
    debug: bool = Field(default=False, description="Show tracebacks for expected errors.")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit (e.g. CLI) overrides taking precedence."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)  # type: ignore[arg-type]
