"""The REST API (FastAPI) and the web investigator it serves.

    from cointrail.interfaces.api import ApiConfig, create_app
    app = create_app(load_settings(store="cointrail-data"), ApiConfig(rate_per_second=50))
"""

from cointrail.interfaces.api.app import create_app
from cointrail.interfaces.api.config import API_PREFIX, ApiConfig

__all__ = ["API_PREFIX", "ApiConfig", "create_app"]
