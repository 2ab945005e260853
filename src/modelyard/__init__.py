"""modelyard: a self-hosted, one-stop MLOps portal."""

from modelyard._version import __version__
from modelyard.sdk.client import ActiveRun, ActiveStep, Client, ModelyardAPIError

__all__ = ["ActiveRun", "ActiveStep", "Client", "ModelyardAPIError", "__version__"]
