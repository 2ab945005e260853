"""modelyard: a self-hosted, one-stop MLOps portal."""

from modelyard._version import __version__
from modelyard.sdk.client import ActiveRun, ActiveStep, Client, ModelyardAPIError
from modelyard.sdk.evaluations import Evaluation
from modelyard.sdk.models import ModelVersion
from modelyard.sdk.transport import ServerExtraMissing

__all__ = [
    "ActiveRun",
    "ActiveStep",
    "Client",
    "Evaluation",
    "ModelVersion",
    "ModelyardAPIError",
    "ServerExtraMissing",
    "__version__",
]
