"""Artifact fuzzer at scale: mutated model directories must load identically or raise ArtifactError.

Every exported model class (plus ALS with approximate HNSW / IVF FAISS indexes) is
fitted once on tiny synthetic data and saved once. Hypothesis then draws ``--cases``
cases (model, mutation kind, seed, hash treatment: recomputed for half of them, so the
structural checks and not the hashes must catch the mutation); each case copies an
artifact, mutates it, and asks a long-lived worker process to load it and, when it
loads, recommend for three users. A worker that dies (segfault, abort) or hangs fails
its case and is replaced. See :mod:`recsys.testing.artifact_fuzz` for the mutations and
the oracle.

Run: ``python -m benchmarks.fuzz_artifacts --cases 10000`` (``--workers`` worker
processes, default 2). Prints the cases tried per mutation kind, the outcomes
(identical / ArtifactError / FAILED) and the time; exits 1 when a case failed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from recsys._utils.progress import progress_bar
from recsys.testing.artifact_fuzz import KINDS, Case, Fuzzer, Result, build_artifacts, case_strategy


def draw_cases(n: int, models: list[str], seed: int) -> list[Case]:
    """``n`` cases drawn by hypothesis (generation only: every case is run, none is shrunk)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    cases: list[Case] = []

    @hseed(seed)
    @settings(max_examples=n, phases=[Phase.generate], database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case_strategy(models))
    def collect(case: Case) -> None:
        cases.append(case)

    while len(cases) < n:
        collect()
    return cases[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="*", help="restrict to these models (default: all)")
    args = ap.parse_args(argv)

    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="recsys-fuzz-"))
    try:
        artifacts = build_artifacts(scratch / "pristine", args.models)
        cases = draw_cases(args.cases, sorted(artifacts), args.seed)
        fuzzer = Fuzzer(artifacts, scratch, n_workers=args.workers)
        setup = time.perf_counter() - started
        results: list[Result] = []
        try:
            with ThreadPoolExecutor(args.workers) as pool, progress_bar(desc="fuzz cases", total=len(cases), show=True) as bar:
                for r in pool.map(fuzzer.run, cases):
                    results.append(r)
                    bar.update(1)
        finally:
            fuzzer.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.perf_counter() - started

    per_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        per_kind[r.case.kind][r.outcome] += 1
        per_kind[r.case.kind]["rehash" if r.case.integrity == "rehash" else "other"] += 1
    print(f"\nartifact fuzzer: {len(results)} cases over {len(artifacts)} models ({', '.join(sorted(artifacts))})")
    print(f"{'mutation kind':<18}{'tried':>7}{'rehashed':>10}{'identical':>11}{'ArtifactError':>15}{'FAILED':>8}")
    for kind in KINDS:
        c = per_kind.get(kind, Counter())
        tried = c["identical"] + c["artifact_error"] + c["FAILED"]
        print(f"{kind:<18}{tried:>7}{c['rehash']:>10}{c['identical']:>11}{c['artifact_error']:>15}{c['FAILED']:>8}")
    total = Counter(r.outcome for r in results)
    print(
        f"{'total':<18}{len(results):>7}{sum(1 for r in results if r.case.integrity == 'rehash'):>10}"
        f"{total['identical']:>11}{total['artifact_error']:>15}{total['FAILED']:>8}"
    )
    failed = [r for r in results if r.outcome == "FAILED"]
    kinds = Counter(r.detail.split(":")[0] for r in failed)
    print(f"outcomes: identical {total['identical']}, ArtifactError {total['artifact_error']}, FAILED {len(failed)}"
          + (f" ({', '.join(f'{k}: {v}' for k, v in kinds.items())})" if failed else ""))
    print(f"time: {elapsed:.1f} s ({setup:.1f} s fitting, saving and starting workers; "
          f"{(elapsed - setup) / max(1, len(results)) * 1000:.1f} ms per case, {args.workers} workers)")
    for r in failed[:30]:
        print(f"FAILED {r.case.label()}: {r.description} -> {r.detail[:300]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
