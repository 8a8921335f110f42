"""Which shard of a CI matrix a job is, from the variables its CI sets
(`--hparams-shard auto` and `auto/N`). Pure: the environment is an argument,
and a mistake is a ValueError whose one-line message names the fix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Variables that name a job's shard, and the index of a CI's first job."""

    name: str  # whose variables, for messages
    index: str
    total: str | None  # None: the index alone; N comes from `auto/N`
    base: int  # 0 or 1

    @property
    def variables(self) -> str:
        return self.index if self.total is None else f"{self.index}/{self.total}"

    @property
    def owner(self) -> str:
        return f"{self.name}'s {self.index}" if self.name != self.index else self.index


# `auto`: the CI sets the index and the number of jobs.
PAIRED = (
    # GitLab's `parallel: N` (its predefined variables): CI_NODE_INDEX is 1 to
    # N, set only in a job with `parallel:`; CI_NODE_TOTAL is 1 in any other job.
    Source("GitLab", "CI_NODE_INDEX", "CI_NODE_TOTAL", base=1),
    # CircleCI's `parallelism: N`: CIRCLE_NODE_INDEX is 0 to CIRCLE_NODE_TOTAL - 1.
    Source("CircleCI", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", base=0),
    # Buildkite's `parallelism: N`: BUILDKITE_PARALLEL_JOB is 0 to N - 1.
    Source("Buildkite", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", base=0),
)
# `auto/N`: the index alone.
INDEXED = (
    # A Kubernetes Indexed Job: 0 to completions - 1, set by the control plane.
    Source("a Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", None, base=0),
    # Ours, for a CI that sets no index (GitHub Actions): set from the matrix,
    # 1 to N like the K of K/N.
    Source("HPARAMS_SHARD_INDEX", "HPARAMS_SHARD_INDEX", None, base=1),
)
VARIABLES = tuple(v for s in PAIRED + INDEXED for v in (s.index, s.total) if v is not None)


def shard_from_env(total: int | None, environ: Mapping[str, str]) -> tuple[int, int]:
    """The shard (K, N), K from 1, that the environment names.

    Args:
      total: N of `auto/N`; None for `auto`, whose N the CI sets too.
      environ: The environment (`os.environ`).

    Returns:
      (K, N) with 1 <= K <= N, as `--hparams-shard K/N` gives it.

    Raises:
      ValueError: No source's variables are set, one is malformed or out of
        range, or two sources name different shards.
    """
    sources = PAIRED if total is None else INDEXED
    found: dict[Source, tuple[int, int]] = {}
    for source in sources:
        shard = _read(source, total, environ)
        if shard is not None:
            found[source] = shard
    if not found:
        raise ValueError(_none_set(total))
    return _agreed(found)


def _agreed(found: Mapping[Source, tuple[int, int]]) -> tuple[int, int]:
    """The one shard every source found names; raises ValueError when they differ."""
    if len(set(found.values())) > 1:
        said = ", ".join(f"{s.variables}: {k}/{n}" for s, (k, n) in found.items())
        raise ValueError(
            f"the environment names different shards ({said}); unset the variables this "
            "job's CI did not set, or give K/N"
        )
    return next(iter(found.values()))


def _read(source: Source, total: int | None, environ: Mapping[str, str]) -> tuple[int, int] | None:
    """The shard one source names; None where its variables are unset."""
    raw_index = environ.get(source.index)
    if source.total is not None:
        return _read_pair(source, source.total, raw_index, environ)
    if raw_index is None:
        return None
    assert total is not None
    return _shard(source, raw_index, total)


def _read_pair(
    source: Source, total_name: str, raw_index: str | None, environ: Mapping[str, str]
) -> tuple[int, int] | None:
    """The shard a CI's index and total name; None where both are unset."""
    raw_total = environ.get(total_name)
    if raw_index is None and raw_total is None:
        return None
    if raw_total is None:
        raise ValueError(
            f"{source.index} is set but {total_name} is not; set both, as "
            f"{source.name} does, or give K/N"
        )
    total = _whole(total_name, raw_total, 1, f"it is {source.name}'s number of jobs")
    if raw_index is not None:
        return _shard(source, raw_index, total)
    if total == 1:  # a job that is not split: GitLab's without `parallel:`
        return 1, 1
    raise ValueError(
        f"{total_name}={total} is set but {source.index} is not; set both, as "
        f"{source.name} does, or give K/N"
    )


def _shard(source: Source, raw_index: str, total: int) -> tuple[int, int]:
    """(K, N) from a source's index, checked against its range for `total` jobs."""
    first, last = source.base, total - 1 + source.base
    index = _whole(source.index, raw_index, 0, f"{_based(source)}, {first} to {last}")
    if not first <= index <= last:
        of = f"{source.total}={total}" if source.total is not None else f"auto/{total}"
        raise ValueError(
            f"{source.index}={index} is out of range: {_based(source)}, {first} to {last} "
            f"for {of}; {_fix_range(source)}"
        )
    return index - source.base + 1, total


def _whole(name: str, raw: str, smallest: int, meaning: str) -> int:
    text = raw.strip()
    if text.isascii() and text.isdigit() and int(text) >= smallest:
        return int(text)
    what = "empty (an unset matrix value?)" if not text else f"not a whole number >= {smallest}"
    raise ValueError(f"{name}={raw!r} is {what}: {meaning}")


def _based(source: Source) -> str:
    return f"{source.owner} is {source.base}-based"


def _fix_range(source: Source) -> str:
    if source.total is not None:
        return "fix the variable, or give K/N"
    if source.index == "JOB_COMPLETION_INDEX":
        return "give the Job's completions as the N of auto/N"
    return "set it from 1 to N, as the K of K/N"


def _none_set(total: int | None) -> str:
    if total is None:
        looked = ", ".join(f"{s.variables} ({s.name}, {s.base}-based)" for s in PAIRED)
        return (
            f"no CI shard variables are set (looked for {looked}); run in a parallel CI job, "
            "use auto/N with JOB_COMPLETION_INDEX or HPARAMS_SHARD_INDEX, or give K/N"
        )
    return (
        "neither JOB_COMPLETION_INDEX (a Kubernetes Indexed Job, 0-based) nor "
        f"HPARAMS_SHARD_INDEX (1-based, 1 to {total}; set it from your CI matrix) is set; "
        "set one, or give K/N"
    )


# A CI run's id, shared by every job of the run (and so by its shards); a
# retried attempt is a run of its own.
RUN_IDS = (
    ("GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT"),
    ("CI_PIPELINE_ID", None),  # GitLab
    ("CIRCLE_WORKFLOW_ID", None),
    ("BUILDKITE_BUILD_ID", "BUILDKITE_RETRY_COUNT"),
)


def run_id(environ: Mapping[str, str]) -> str | None:
    """The CI run this job belongs to (`GITHUB_RUN_ID 123 attempt 1`), or None."""
    for name, attempt in RUN_IDS:
        value = environ.get(name, "").strip()
        if value:
            again = environ.get(attempt, "").strip() if attempt else ""
            return f"{name} {value}" + (f" attempt {again}" if again else "")
    return None
