"""The artifact fuzzer, short budget: every exported model, mutated artifacts loaded in worker processes.

A case passes when loading raises ArtifactError, or the model loads and recommends
exactly what the unmutated artifact recommends; a worker crash (segfault), another
exception, a hang or different recommendations fail it. ``python -m
benchmarks.fuzz_artifacts --cases 10000`` runs the long version.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import recsys.models
from recsys.testing._cases import CONTRACT_CASES
from recsys.testing.artifact_fuzz import (
    KINDS,
    MUST_FAIL,
    Case,
    Fuzzer,
    Worker,
    build_artifacts,
    case_strategy,
    model_names,
)

CASES_PER_MODEL = 20


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    root = tmp_path_factory.mktemp("fuzz")
    f = Fuzzer(build_artifacts(root / "pristine"), root, n_workers=1)
    yield f
    f.close()


def test_every_exported_model_is_fuzzed() -> None:
    exported = set(recsys.models.__all__) - {"Recommender", "Ranker"}  # the base class and the ranker protocol
    assert exported <= set(CONTRACT_CASES)
    assert exported <= set(model_names())


@pytest.mark.parametrize("model", model_names())
def test_mutated_artifacts_load_identically_or_raise_artifact_error(fuzzer: Fuzzer, model: str) -> None:
    failures: list[str] = []
    outcomes: list[str] = []

    @settings(max_examples=CASES_PER_MODEL, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case_strategy([model]))
    def run(case: Case) -> None:
        r = fuzzer.run(case)
        outcomes.append(r.outcome)
        if r.outcome == "FAILED":
            failures.append(f"{case.label()}: {r.description} -> {r.detail}")
        assert r.outcome != "FAILED", failures[-1]

    run()
    assert len(outcomes) >= CASES_PER_MODEL // 2  # the budget really ran cases


@pytest.mark.parametrize("kind", sorted(MUST_FAIL))
def test_mutations_that_must_be_refused_are(fuzzer: Fuzzer, kind: str) -> None:
    for seed, integrity in [(1, "rehash"), (2, "noverify"), (3, "stale")]:
        r = fuzzer.run(Case("ItemKNN", kind, seed, integrity))
        assert r.outcome == "artifact_error", (r.description, r.detail)


def test_a_structural_mutation_with_recomputed_hashes_is_caught_by_the_structure_checks(fuzzer: Fuzzer) -> None:
    # the segfault of the issue: an out-of-range sparse index, hashes recomputed
    hits = []
    for seed in range(40):
        r = fuzzer.run(Case("ItemKNN", "npy_values", seed, "rehash"))
        if "neighbours__indices" in r.description:
            hits.append(r)
    assert hits, "no case hit the neighbours indices"
    for r in hits:
        assert r.outcome == "artifact_error" and "neighbours_" in r.detail and "SHA-256" not in r.detail


def test_a_dead_worker_fails_its_case_and_is_replaced(fuzzer: Fuzzer) -> None:
    worker = Worker()
    try:
        worker.proc.kill()
        answer = worker.ask({"path": "x", "users": [0], "k": 1})
        assert answer["outcome"] == "crash" and "signal 9" in answer["detail"]
    finally:
        worker.close()
    assert fuzzer.run(Case("Popular", "add_file", 0, "stale")).outcome in ("identical", "artifact_error")


def test_every_kind_is_generated() -> None:
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None)
    @given(case_strategy(["Popular"]))
    def collect(case: Case) -> None:
        seen.add(case.kind)

    collect()
    assert seen == set(KINDS)


def test_pristine_artifacts_answer(fuzzer: Fuzzer, tmp_path: Path) -> None:
    for name, answer in fuzzer.baselines.items():
        assert answer["outcome"] == "loaded" and len(answer["recs"]) == 3 * 5, name
