"""The demo workspace: real training, real artifacts, every state a user should see."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from modelyard.demo import CANCER, CHURN, LATER_CHURN, NIGHTLY, PIPELINE, build_demo
from modelyard.sdk.client import Client
from modelyard.settings import Settings


@pytest.fixture(scope="module")
def demo_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """One demo workspace for the module (it trains real models), on SQLite."""
    data = tmp_path_factory.mktemp("demo")
    client = Client(str(data))
    assert build_demo(client) is True
    yield client
    client.close()


def test_building_again_changes_nothing(demo_client: Client) -> None:
    before = {p.name: p.run_count for p in demo_client.list_projects()}
    assert build_demo(demo_client) is False
    assert {p.name: p.run_count for p in demo_client.list_projects()} == before
    assert before == {CANCER: 5, CHURN: 5}


def test_runs_end_in_every_state(demo_client: Client) -> None:
    churn = {r.name: r for r in demo_client.iter_runs(CHURN)}
    assert sorted(r.status for r in churn.values()) == [
        "failed",
        "finished",
        "finished",
        "finished",
        "running",
    ]
    failed = next(r for r in churn.values() if r.status == "failed")
    assert failed.error is not None
    assert "learning_rate" in failed.error
    steps = {s.name: s for s in demo_client.list_steps(failed.run_id)}
    assert steps["train"].status == "failed"
    assert steps["evaluate"].status == "skipped"
    live = {s.name: s for s in demo_client.list_steps(churn[NIGHTLY].run_id)}
    assert live["train"].status == "running"
    assert live["train"].progress == pytest.approx(0.6)
    assert live["evaluate"].status == "pending"


def test_pipelines_have_their_artifacts_in_the_step_that_made_them(demo_client: Client) -> None:
    for run in demo_client.iter_runs(CANCER):
        assert run.status == "finished"
        steps = demo_client.list_steps(run.run_id)
        assert [s.name for s in steps] == list(PIPELINE)
        assert {s.name: s.depends_on for s in steps} == PIPELINE
        made = {s.name: [a.path for a in s.artifacts] for s in steps}
        assert made["ingest"] == ["data.csv"]
        assert made["featurize"] == ["features.parquet"]
        assert made["export"] == ["model.pkl"]


def test_logged_metrics_match_the_exported_model(demo_client: Client, tmp_path: Path) -> None:
    """Recompute the holdout metrics with scikit-learn from the model the run exported."""
    data = load_breast_cancer()
    x_train, x_test, _, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
    )
    x_test = StandardScaler().fit(x_train).transform(x_test)
    for run in demo_client.iter_runs(CANCER):
        path = demo_client.download_artifact(run.run_id, "model.pkl", tmp_path / run.run_id)
        model = pickle.loads(path.read_bytes())
        score = model.predict_proba(x_test)[:, 1]
        assert run.metrics["auc"].value == pytest.approx(roc_auc_score(y_test, score), abs=1e-12)
        assert run.metrics["average_precision"].value == pytest.approx(
            average_precision_score(y_test, score), abs=1e-12
        )


def test_lineage_runs_from_dataset_to_model(demo_client: Client) -> None:
    run = next(iter(demo_client.iter_runs(CANCER)))
    graph = demo_client.lineage(run.urn, upstream=1, downstream=1)
    kinds = {n.urn.split(":")[2] for n in graph.nodes}
    assert {"dataset", "run", "artifact", "model"} <= kinds


def test_demo_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from modelyard.cli import main

    settings = Settings(data_dir=tmp_path / "d")
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--data-dir", str(settings.data_dir)])
    assert first.exit_code == 0, first.output
    assert "built" in first.output
    again = runner.invoke(main, ["demo", "--data-dir", str(settings.data_dir)])
    assert "already present" in again.output


def test_finished_runs_are_evaluated_with_fairness_where_there_is_a_group(
    demo_client: Client,
) -> None:
    for project in (CANCER, CHURN):
        for run in demo_client.iter_runs(project):
            evaluations = demo_client.list_evaluations(run.run_id)
            if run.status != "finished":
                assert evaluations == []
                continue
            (ev,) = [e for e in evaluations if e.public.model is None]  # the run's own
            assert ev.public.task == "binary"
            assert ev.metrics["binary"]["roc_auc"] == pytest.approx(
                run.metrics["auc"].value, abs=1e-12
            )
            assert ("fairness" in ev.public.analyzers) == (project == CHURN)


def test_every_finished_pipeline_registered_a_model_version(demo_client: Client) -> None:
    for project in (CANCER, CHURN):
        finished = [r for r in demo_client.iter_runs(project) if r.status == "finished"]
        versions = demo_client._call("GET", f"/models/{project}-classifier/versions")
        assert sorted(v["run_id"] for v in versions) == sorted(r.run_id for r in finished)
        assert sorted(v["version"] for v in versions) == list(range(1, len(finished) + 1))
        assert {v["source"] for v in versions} == {"model.pkl"}  # the artifact each run exported


def test_later_churn_versions_are_evaluated_on_the_next_month(demo_client: Client) -> None:
    evaluated = {
        v: [
            e.public.dataset
            for e in demo_client.get_model_version(f"{CHURN}-classifier", v).evaluations()
        ]
        for v in (1, 2, 3)
    }
    assert evaluated == {1: [], 2: [LATER_CHURN], 3: [LATER_CHURN]}
