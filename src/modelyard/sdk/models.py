"""Model versions from the SDK: register a run's model, evaluate a version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelyard.schemas import EvaluationPublic, ModelVersionPublic
from modelyard.sdk.evaluations import Evaluation, evaluate

if TYPE_CHECKING:
    from modelyard.sdk.client import Client


class ModelVersion:
    """A registered version of a model, made by a run."""

    def __init__(self, client: Client, public: ModelVersionPublic) -> None:
        self.client = client
        self.public = public

    @property
    def model(self) -> str:
        return self.public.model

    @property
    def version(self) -> int:
        return self.public.version

    @property
    def _path(self) -> str:
        return f"/models/{quote(self.model, safe='')}/versions/{self.version}"

    def evaluate(self, y_true: Any, y_score: Any, **options: Any) -> Evaluation:
        """Evaluate this version's predictions (the options of :meth:`ActiveRun.evaluate`)."""
        return evaluate(
            self.client, self.public.run_id, y_true, y_score,
            target=f"/api/v1{self._path}/evaluations", **options,
        )  # fmt: skip

    def evaluations(self) -> list[Evaluation]:
        rows = self.client._call("GET", f"{self._path}/evaluations")
        return [Evaluation(self.client, EvaluationPublic.model_validate(r)) for r in rows]

    def __repr__(self) -> str:
        return f"ModelVersion({self.model!r}, {self.version})"


def register(
    client: Client, run_id: str, model: str, description: str = "", *, source: str | None = None
) -> ModelVersion:
    body: dict[str, Any] = {"model": model, "description": description}
    if source is not None:
        body["source"] = source
    public = client._call("POST", f"/runs/{run_id}/model-versions", json=body)
    return ModelVersion(client, ModelVersionPublic.model_validate(public))


def get(client: Client, model: str, version: int) -> ModelVersion:
    public = client._call("GET", f"/models/{quote(model, safe='')}/versions/{version}")
    return ModelVersion(client, ModelVersionPublic.model_validate(public))
