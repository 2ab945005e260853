"""Typed aspects, which entity types may carry them, and the edges each one implies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.limits import TERMINAL_STATUSES as TERMINAL_STATUSES
from modelyard.limits import RunStatus as RunStatus
from modelyard.limits import StepStatus as StepStatus
from modelyard.metadata.urn import make_urn, parse_urn, run_urn, step_urn


class Aspect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectProperties(Aspect):
    project_id: int
    name: str
    description: str = ""


class RunProperties(Aspect):
    project_id: int
    name: str
    source: str | None = None
    git_commit: str | None = None


class RunState(Aspect):
    status: RunStatus
    start_time: int
    end_time: int | None = None
    error: str | None = None


class RunParams(Aspect):
    params: dict[str, str] = Field(default_factory=dict)


class Tags(Aspect):
    tags: dict[str, str] = Field(default_factory=dict)


class StepProperties(Aspect):
    run_id: str
    name: str
    depends_on: list[str] = Field(default_factory=list)


class StepState(Aspect):
    status: StepStatus
    progress: float | None = None
    message: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    error: str | None = None


class ArtifactProperties(Aspect):
    run_id: str
    path: str
    step: str | None = None
    size: int
    sha256: str
    media_type: str
    kind: str | None = None


class DatasetProperties(Aspect):
    name: str
    uri: str | None = None
    digest: str | None = None
    num_rows: int | None = None
    description: str = ""


class ModelProperties(Aspect):
    name: str
    description: str = ""


class RunLineage(Aspect):
    consumes: list[str] = Field(default_factory=list)
    produces: list[str] = Field(default_factory=list)


class ModelVersionProperties(Aspect):
    model: str
    version: int
    run_id: str
    description: str = ""
    source: str | None = None  # path of the run's artifact that is this version, if named


# A model version's life (see ``services.registry.lifecycle``): its states and the moves.
LifecycleState = Literal[
    "draft", "in_review", "rejected", "publishable", "deployed", "deprecated", "retired"
]
LifecycleAction = Literal[
    "request_review", "withdraw", "reject", "revise", "publish", "deploy", "undeploy",
    "deprecate", "retire",
]  # fmt: skip


class ModelVersionLifecycle(Aspect):
    """Where a version is in its life, and the move that put it there; each move is a
    version of this aspect."""

    state: LifecycleState
    action: LifecycleAction | None = None
    comment: str = ""
    successor: int | None = None  # the version that replaces a deprecated one
    at: int


class EvaluationProperties(Aspect):
    run_id: str
    model_version: str | None = None  # URN, when the evaluation is of a model version
    name: str
    dataset: str | None = None
    task: str
    analyzers: list[str]
    rows: int
    weighted: bool = False
    groups: list[str] = Field(default_factory=list)
    threshold: float = 0.5
    files: dict[str, str] = Field(default_factory=dict)  # role -> artifact path in the run


class EvaluationMetrics(Aspect):
    metrics: dict[str, dict[str, float | None]]  # analyzer -> headline metric -> value


class UserProperties(Aspect):
    display_name: str = ""
    email: str | None = None
    admin: bool = False
    service: bool = False  # a service account: acts through tokens only
    disabled: bool = False


class UserSignIn(Aspect):
    """A sign-in: each one is a version, so the history is the user's sign-ins."""

    at: int
    method: str  # "password" or "proxy"
    address: str | None = None


class UserPassword(Aspect):
    """When the password was last set (never the password or its hash)."""

    changed_at: int


class TokenProperties(Aspect):
    user: str
    name: str
    read_only: bool
    expires_at: int | None = None
    revoked: bool = False


class GroupMembers(Aspect):
    users: list[str] = Field(default_factory=list)


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str  # "user" or "group"
    name: str
    role: str


class ProjectAccess(Aspect):
    internal: bool = False  # every signed-in user may read it
    members: list[Member] = Field(default_factory=list)


class Status(Aspect):
    removed: bool = False


ASPECTS: dict[str, type[Aspect]] = {
    "project_properties": ProjectProperties,
    "run_properties": RunProperties,
    "run_state": RunState,
    "run_params": RunParams,
    "tags": Tags,
    "step_properties": StepProperties,
    "step_state": StepState,
    "artifact_properties": ArtifactProperties,
    "dataset_properties": DatasetProperties,
    "model_properties": ModelProperties,
    "run_lineage": RunLineage,
    "model_version_properties": ModelVersionProperties,
    "model_version_lifecycle": ModelVersionLifecycle,
    "evaluation_properties": EvaluationProperties,
    "evaluation_metrics": EvaluationMetrics,
    "user_properties": UserProperties,
    "user_sign_in": UserSignIn,
    "user_password": UserPassword,
    "token_properties": TokenProperties,
    "group_members": GroupMembers,
    "project_access": ProjectAccess,
    "status": Status,
}

ENTITY_ASPECTS: dict[str, frozenset[str]] = {
    "project": frozenset({"project_properties", "project_access", "tags", "status"}),
    "user": frozenset({"user_properties", "user_sign_in", "user_password"}),
    "token": frozenset({"token_properties"}),
    "group": frozenset({"group_members"}),
    "run": frozenset(
        {"run_properties", "run_state", "run_params", "tags", "run_lineage", "status"}
    ),
    "step": frozenset({"step_properties", "step_state"}),
    "artifact": frozenset({"artifact_properties", "tags", "status"}),
    "dataset": frozenset({"dataset_properties", "tags", "status"}),
    "model": frozenset({"model_properties", "tags", "status"}),
    "model_version": frozenset(
        {"model_version_properties", "model_version_lifecycle", "tags", "status"}
    ),
    "evaluation": frozenset({"evaluation_properties", "evaluation_metrics", "tags", "status"}),
}

# (source, type, destination, is_lineage)
Edge = tuple[str, str, str, bool]

# Lineage flows from upstream to downstream. For these edge types the source is downstream
# of the destination (a run consumes a dataset: the dataset is upstream of the run).
SOURCE_IS_DOWNSTREAM = frozenset(
    {"Consumes", "TrainedBy", "EvaluatedOn", "UsesFeature", "DerivedFrom"}
)


def _run_edges(urn: str, a: Aspect) -> list[Edge]:
    assert isinstance(a, RunProperties)
    return [(urn, "ChildOf", make_urn("project", a.project_id), False)]


def _step_edges(urn: str, a: Aspect) -> list[Edge]:
    assert isinstance(a, StepProperties)
    return [(urn, "ChildOf", run_urn(a.run_id), False)]


def _artifact_edges(urn: str, a: Aspect) -> list[Edge]:
    assert isinstance(a, ArtifactProperties)
    edges: list[Edge] = [
        (urn, "ChildOf", run_urn(a.run_id), False),
        (run_urn(a.run_id), "Produces", urn, True),
    ]
    if a.step is not None:
        edges.append((step_urn(a.run_id, a.step), "Produces", urn, False))
    return edges


def _lineage_edges(urn: str, a: Aspect) -> list[Edge]:
    assert isinstance(a, RunLineage)
    return [(urn, "Consumes", parse_urn(u).__str__(), True) for u in a.consumes] + [
        (urn, "Produces", parse_urn(u).__str__(), True) for u in a.produces
    ]


def _evaluation_edges(urn: str, a: Aspect) -> list[Edge]:
    assert isinstance(a, EvaluationProperties)
    edges: list[Edge] = [(urn, "DerivedFrom", run_urn(a.run_id), True)]
    if a.dataset is not None:
        edges.append((urn, "EvaluatedOn", make_urn("dataset", a.dataset), True))
    if a.model_version is not None:
        edges.append((urn, "DerivedFrom", a.model_version, True))
    return edges


def _model_version_edges(urn: str, a: Aspect) -> list[Edge]:
    assert isinstance(a, ModelVersionProperties)
    edges: list[Edge] = [
        (urn, "ChildOf", make_urn("model", a.model), False),
        (urn, "TrainedBy", run_urn(a.run_id), True),
    ]
    if a.source is not None:
        edges.append((urn, "DerivedFrom", make_urn("artifact", a.run_id, a.source), True))
    return edges


EDGE_DERIVERS: dict[str, Callable[[str, Aspect], list[Edge]]] = {
    "evaluation_properties": _evaluation_edges,
    "model_version_properties": _model_version_edges,
    "run_properties": _run_edges,
    "step_properties": _step_edges,
    "artifact_properties": _artifact_edges,
    "run_lineage": _lineage_edges,
}
