"""A realistic demo workspace, built with no network: real scikit-learn training on data that
ships with scikit-learn or is generated, logged through the SDK like any user's pipeline."""

from __future__ import annotations

import io
import json
import pickle
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from modelyard.metadata.store import Store
from modelyard.sdk.client import ActiveRun, Client
from modelyard.sdk.models import ModelVersion
from modelyard.sdk.transport import ModelyardAPIError
from modelyard.services.access import accounts

PIPELINE = {
    "ingest": [],
    "validate": ["ingest"],
    "featurize": ["validate"],
    "train": ["featurize"],
    "evaluate": ["train"],
    "export": ["evaluate"],
}
CANCER = "breast-cancer"
CHURN = "customer-churn"
NIGHTLY = "gbm-nightly"
LATER_CHURN = "churn-2026-11"  # the model versions' own evaluations are on this month


def build_demo(client: Client) -> bool:
    """Build the workspace; False (and nothing written) when it is already there."""
    try:
        if client.search_runs(CHURN, f"name = '{NIGHTLY}'").runs:  # the last run built
            return False
    except ModelyardAPIError as exc:
        if exc.status != 404:
            raise
    for name, description in (
        (CANCER, "Diagnosing breast tumours from cell-nucleus measurements."),
        (CHURN, "Who will cancel their subscription next month?"),
    ):
        try:
            client.create_project(name, description)
        except ModelyardAPIError as exc:
            if exc.status != 409:
                raise
    cancer = load_breast_cancer()
    sweep: list[dict[str, Any]] = [
        {"model": "gbm", "n_estimators": 60, "max_depth": 2, "learning_rate": 0.1},
        {"model": "gbm", "n_estimators": 120, "max_depth": 3, "learning_rate": 0.05},
        {"model": "gbm", "n_estimators": 80, "max_depth": 4, "learning_rate": 0.2},
        {"model": "logreg", "C": 0.1},
        {"model": "logreg", "C": 1.0},
    ]
    for n, params in enumerate(sweep):
        _pipeline(
            client,
            CANCER,
            f"{params['model']}-{n + 1}",
            cancer.data,
            cancer.target,
            params,
            dataset="breast-cancer-wisconsin",
        )
    x, y, group = churn_table(np.random.default_rng(7))
    x_later, y_later, group_later = churn_table(np.random.default_rng(11), n=2000)
    for n, params in enumerate(sweep[:3]):
        version, score = _pipeline(
            client,
            CHURN,
            f"{params['model']}-{n + 1}",
            x,
            y,
            params,
            dataset="churn-2026-10",
            groups={"gender": group},
        )
        if n > 0:  # the later versions, checked on the next month's customers
            version.evaluate(
                y_later, score(x_later), dataset=LATER_CHURN, groups={"gender": group_later}
            )
    _failed_run(client, x, y)
    _running_run(client, x, y)
    return True


@dataclass(frozen=True)
class DemoUser:
    name: str
    display_name: str
    admin: bool = False
    role: str | None = None  # in ``project``
    project: str | None = None

    @property
    def password(self) -> str:
        """Demo passwords, for a workspace on this machine only: the name and "-demo"."""
        return f"{self.name}-demo"

    def describe(self) -> str:
        if self.admin:
            return "site admin: manages users and every project"
        return f"{self.role} of {self.project}" if self.role else "no role of their own"


# One user per kind of access, and a group: what each sees in the portal differs.
DEMO_USERS = (
    DemoUser("ada", "Ada Lovelace", admin=True),
    DemoUser("grace", "Grace Hopper", role="owner", project=CHURN),
    DemoUser("alan", "Alan Turing", role="editor", project=CHURN),
    DemoUser("edsger", "Edsger Dijkstra", role="viewer", project=CHURN),
)
# A group, and its role in the other project.
DEMO_GROUP = ("cancer-reviewers", ["grace", "edsger"], "reviewer", CANCER)


def add_demo_users(store: Store, *, actor: str = "demo") -> bool:
    """Add the demo's users, their roles and group (the portal then asks to sign in); False
    (and nothing written) when they are there already."""
    if any(u.name == DEMO_USERS[0].name for u in accounts.list_users(store)):
        return False
    for user in DEMO_USERS:
        accounts.add_user(
            store,
            actor=actor,
            name=user.name,
            display_name=user.display_name,
            email=f"{user.name}@example.com",
            password=user.password,
            admin=user.admin,
        )
        if user.role and user.project:
            accounts.set_member(
                store, project=user.project, kind="user", name=user.name, role=user.role,
                actor=actor,
            )  # fmt: skip
    group, names, role, project = DEMO_GROUP
    accounts.set_group(store, name=group, users=names, actor=actor)
    accounts.set_member(store, project=project, kind="group", name=group, role=role, actor=actor)
    return True


def churn_table(rng: np.random.Generator, n: int = 4000) -> tuple[Any, Any, Any]:
    """A synthetic customer table: tenure, usage, support calls, price, a sensitive attribute."""
    gender = rng.choice(np.array(["female", "male"]), n)
    tenure = rng.gamma(2.0, 12.0, n)
    usage = rng.normal(50, 15, n) - 5 * (gender == "male")
    calls = rng.poisson(1.5, n)
    price = rng.normal(30, 8, n)
    logit = -1.0 - 0.05 * tenure - 0.02 * usage + 0.6 * calls + 0.04 * price
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    return np.column_stack([tenure, usage, calls, price]), churned.astype(int), gender


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="modelyard-demo-") as tmp:
        yield Path(tmp)


def _model(params: dict[str, Any]) -> Any:
    if params["model"] == "gbm":
        return GradientBoostingClassifier(
            n_estimators=params["n_estimators"],
            max_depth=params["max_depth"],
            learning_rate=params["learning_rate"],
            random_state=0,
        )
    return LogisticRegression(C=params["C"], max_iter=2000)


def _pipeline(
    client: Client,
    project: str,
    name: str,
    x: Any,
    y: Any,
    params: dict[str, Any],
    *,
    dataset: str,
    groups: dict[str, Any] | None = None,
) -> tuple[ModelVersion, Callable[[Any], Any]]:
    """Run the pipeline; the model version it registered and its scoring of new rows."""
    with (
        _scratch() as tmp,
        client.start_run(project, name, params=params, tags={"team": "demo"}) as run,
    ):
        run.plan(PIPELINE)
        x_train, x_test, y_train, y_test, test_rows = _ingest(run, tmp, x, y, dataset)
        with run.step("validate") as step:
            report = {
                "rows": len(y),
                "positives": int(np.sum(y)),
                "missing_values": int(np.isnan(x).sum()),
            }
            (tmp / "validation.json").write_text(json.dumps(report, indent=2))
            step.log_artifact(tmp / "validation.json", kind="report")
        with run.step("featurize") as step:
            scaler = StandardScaler().fit(x_train)
            x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
            table = pa.table({f"f{i}": x_train[:, i] for i in range(x_train.shape[1])})
            pq.write_table(table, tmp / "features.parquet")
            step.log_artifact(tmp / "features.parquet", kind="dataset")
        with run.step("train") as step:
            model = _model(params).fit(x_train, y_train)
            _log_training_curve(run, step, model, x_train, y_train)
        with run.step("evaluate") as step:
            score = model.predict_proba(x_test)[:, 1]
            run.log_metrics(
                {
                    "auc": roc_auc_score(y_test, score),
                    "average_precision": average_precision_score(y_test, score),
                    "log_loss": log_loss(y_test, score),
                }
            )
            buf = io.StringIO()
            np.savetxt(
                buf,
                np.column_stack([y_test, score]),
                delimiter=",",
                header="y_true,y_score",
                comments="",
                fmt=["%d", "%.6f"],
            )
            (tmp / "predictions.csv").write_text(buf.getvalue())
            step.log_artifact(tmp / "predictions.csv", kind="table")
            test_groups = {k: np.asarray(v)[test_rows] for k, v in (groups or {}).items()}
            run.evaluate(y_test, score, dataset=f"{dataset}-holdout", groups=test_groups or None)
        with run.step("export") as step:
            (tmp / "model.pkl").write_bytes(pickle.dumps(model))
            step.log_artifact(tmp / "model.pkl", kind="model")
            run.log_model(f"{project}-classifier")
            version = run.register_model(
                f"{project}-classifier", f"{name}: {params['model']}", source="model.pkl"
            )
    return version, lambda rows: model.predict_proba(scaler.transform(rows))[:, 1]


def _ingest(run: ActiveRun, tmp: Path, x: Any, y: Any, dataset: str) -> list[Any]:
    with run.step("ingest") as step:
        data = np.column_stack([x, y])
        np.savetxt(tmp / "data.csv", data, delimiter=",", fmt="%.6g")
        step.log_artifact(tmp / "data.csv", kind="dataset")
        run.log_input(dataset, uri=f"sklearn://{dataset}", num_rows=len(y))
        step.set_progress(1.0, f"{len(y)} rows")
        rows = np.arange(len(y))
        parts: list[Any] = train_test_split(x, y, rows, test_size=0.3, random_state=0, stratify=y)
        x_train, x_test, y_train, y_test, _, test_rows = parts
        return [x_train, x_test, y_train, y_test, test_rows]


def _log_training_curve(run: ActiveRun, step: Any, model: Any, x: Any, y: Any) -> None:
    if hasattr(model, "train_score_"):  # boosting: the loss after every stage
        for i, loss in enumerate(model.train_score_):
            run.log_metric("train_loss", float(loss), step=i)
            if i % 20 == 0:
                step.set_progress(i / len(model.train_score_), f"stage {i}")
    else:
        run.log_metric("train_loss", log_loss(y, model.predict_proba(x)[:, 1]), step=0)


def _failed_run(client: Client, x: Any, y: Any) -> None:
    params = {"model": "gbm", "n_estimators": 50, "max_depth": 3, "learning_rate": -0.1}
    try:
        with client.start_run(CHURN, "gbm-bad-learning-rate", params=params) as run:
            run.plan(PIPELINE)
            with run.step("ingest"), run.step("validate"), run.step("featurize"):
                pass
            with run.step("train"):
                _model(params).fit(x, y)
    except ValueError:
        pass  # the run and its step are marked failed with the message


def _running_run(client: Client, x: Any, y: Any) -> None:
    """A pipeline left running, half-way through training, for the live views."""
    run = client.start_run(CHURN, NIGHTLY, params={"model": "gbm", "n_estimators": 400})
    run.plan(PIPELINE)
    for name in ("ingest", "validate", "featurize"):
        with run.step(name):
            pass
    train = run.step("train")
    train.start()
    for i in range(240):
        run.log_metric("train_loss", 1.2 * np.exp(-i / 80) + 0.3, step=i)
    train.set_progress(0.6, "stage 240 of 400")
    run.detach()
