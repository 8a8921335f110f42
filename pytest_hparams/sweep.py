"""A sweep as declared: its hparams and their domains, a grid's values,
its metrics, and what is derived from values (trial ids and seeds, the
values' one text form).

Pure data and functions: no pytest, no I/O. Records are NamedTuples rather
than dataclasses: this module loads in every pytest run, and a dataclass costs
about 1 ms to define. TensorBoard's own `HParam` and
domain classes are accepted as input, but are only looked at when the user
has already imported them, so this module never imports TensorBoard.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from pytest_hparams.errors import SweepError
from pytest_hparams.metrics import Metric

Value = bool | int | float | str
DType = Literal["bool", "number", "str"]

#: The hparam every recorded trial carries so the dashboard can tell sweeps apart.
SWEEP_HPARAM = "pytest.sweep"
#: The metric every finished trial of a pruned sweep carries: 1 when its
#: pruner stopped it, 0 when it ran to the end. TensorBoard's status has no
#: word for a pruned trial (it ends as Failure): this column tells the two
#: apart, and its Min filter set to 1 keeps the pruned ones alone.
PRUNED_METRIC = "pytest.pruned"

_TB_MODULE = "tensorboard.plugins.hparams.summary_v2"


def tb_kind(obj: object) -> str:
    """The class name of a TensorBoard hparams object (HParam, Discrete,
    IntInterval, RealInterval, Metric), or "" for anything else.

    Looks at the class, not at isinstance: this module never imports
    TensorBoard, and a reloaded summary_v2 must still be recognised.
    """
    cls = type(obj)
    return cls.__name__ if cls.__module__ == _TB_MODULE else ""


class Domain(NamedTuple):
    """The declared range of an hparam, as the dashboard shows it.

    TensorBoard knows three types (bool, float64, string), so ints and floats
    share the "number" type here.
    """

    kind: Literal["discrete", "interval"]
    dtype: DType
    values: tuple[Value, ...] = ()
    min_value: float | None = None
    max_value: float | None = None

    def contains(self, value: Value) -> bool:
        if self.kind == "discrete":
            return value in self.values
        assert self.min_value is not None and self.max_value is not None
        return dtype_of(value) == "number" and self.min_value <= float(value) <= self.max_value

    def describe(self) -> str:
        if self.kind == "interval":
            return f"[{self.min_value}, {self.max_value}]"
        return "{" + ", ".join(repr(v) for v in self.values) + "}"

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "interval":
            return {
                "kind": "interval",
                "dtype": self.dtype,
                "min": self.min_value,
                "max": self.max_value,
            }
        return {"kind": "discrete", "dtype": self.dtype, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Domain:
        if data["kind"] == "interval":
            return cls("interval", data["dtype"], min_value=data["min"], max_value=data["max"])
        return cls("discrete", data["dtype"], values=tuple(data["values"]))


def merge_domains(a: Domain | None, b: Domain | None) -> Domain | None:
    """Returns the smallest domain holding both, or None when the types disagree.

    Two sweeps in one logdir may declare the same hparam differently; the
    dashboard hides sessions whose value lies outside the declared domain, so
    the merged config must hold every value of both.
    """
    if a is None or b is None or a.dtype != b.dtype:
        return None
    if a.kind == b.kind == "discrete":
        return Domain("discrete", a.dtype, values=sorted_values(set(a.values) | set(b.values)))
    if a.dtype != "number":
        return None
    lows = [_low(a), _low(b)]
    highs = [_high(a), _high(b)]
    return Domain("interval", "number", min_value=min(lows), max_value=max(highs))


def _low(d: Domain) -> float:
    return float(min(d.values)) if d.kind == "discrete" else float(d.min_value)  # type: ignore[arg-type]


def _high(d: Domain) -> float:
    return float(max(d.values)) if d.kind == "discrete" else float(d.max_value)  # type: ignore[arg-type]


def sorted_values(values: set[Value]) -> tuple[Value, ...]:
    return tuple(sorted(values, key=lambda v: (dtype_of(v), v)))


class HParamDef(NamedTuple):
    """One swept hyperparameter: its name, grid points and dashboard domain."""

    name: str
    values: tuple[Value, ...]
    domain: Domain
    display_name: str = ""
    description: str = ""
    declared: Any = None  # the TensorBoard HParam it came from, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "domain": self.domain.to_dict(),
            "display_name": self.display_name,
            "description": self.description,
        }


class Sweep(NamedTuple):
    """A validated grid: the hparams in declaration order and the metrics."""

    hparams: tuple[HParamDef, ...]
    metrics: tuple[Metric, ...] = ()
    # Set for sampled sweeps (`hparam_random`): the trials, instead of the product.
    fixed: tuple[dict[str, Value], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hparams)

    @property
    def size(self) -> int:
        if self.fixed:
            return len(self.fixed)
        return math.prod(len(h.values) for h in self.hparams)

    def combinations(self) -> Iterator[dict[str, Value]]:
        """Every trial: the grid's product, the last hparam varying fastest."""
        if self.fixed:
            yield from (dict(c) for c in self.fixed)
            return
        names = self.names
        for combo in itertools.product(*(h.values for h in self.hparams)):
            yield dict(zip(names, combo, strict=False))


def format_value(value: Value) -> str:
    """The text of a value in ids and tables: floats in their shortest repr."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def trial_id(hparams: Mapping[str, Value]) -> str:
    """The pytest id of one combination: `name:value` joined by `-`.

    pytest's `-k` accepts `:` in a keyword but not `=`, so `-k optimizer:adam`
    selects trials.
    """
    return "-".join(f"{name}:{format_value(v)}" for name, v in hparams.items())


def trial_seed(key: str) -> int:
    """A seed derived from the trial's key: equal in every run and process."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


def build_sweep(
    positional: Sequence[object],
    values: Mapping[str, object],
    metrics: object = None,
) -> Sweep:
    """Validates the arguments of `@hparam_grid` and expands them.

    Args:
      positional: TensorBoard `HParam` objects.
      values: Names mapped to lists/tuples/ranges of values or to TensorBoard
        `Discrete`/`IntInterval` domains.
      metrics: None or a sequence of names, `Metric` or TensorBoard `hp.Metric`.

    Returns:
      The validated `Sweep`.

    Raises:
      SweepError: With a one-line message naming the problem and the fix.
    """
    declared = declared_hparams(positional)
    names = [*declared, *(n for n in values if n not in declared)]
    hparams = [_hparam(name, declared.get(name), values) for name in names]
    if not hparams:
        raise SweepError(
            "@hparam_grid needs at least one hparam, e.g. @hparam_grid(units=[16, 32])"
        )
    return Sweep(tuple(hparams), parse_metrics(metrics))


def _hparam(name: str, hp: Any, values: Mapping[str, object]) -> HParamDef:
    """One hparam of a grid: its values (given, else its TensorBoard domain's)
    and its domain (its `HParam`'s, else the values' own)."""
    check_name(name)
    tb_domain = hp.domain if hp is not None else None
    grid = _grid_values(name, _grid_source(name, tb_domain, values))
    if tb_domain is None:
        domain = Domain("discrete", dtype_of(grid[0]), values=sorted_values(set(grid)))
    else:
        domain = _holding(tb_domain_of(name, tb_domain), name, grid)
    return HParamDef(
        name,
        grid,
        domain,
        display_name=getattr(hp, "display_name", None) or "",
        description=getattr(hp, "description", None) or "",
        declared=hp,
    )


def _grid_source(name: str, tb_domain: Any, values: Mapping[str, object]) -> object:
    """What a grid's values come from: those given, else its TensorBoard domain."""
    if name in values:
        return values[name]
    if tb_domain is None:
        raise SweepError(
            f"HParam {name!r} has no domain to take values from; give them as {name}=[...]"
        )
    return tb_domain


def _holding(domain: Domain, name: str, grid: Sequence[Value]) -> Domain:
    """`domain`, once every value of the grid is found inside it."""
    outside = [v for v in grid if not domain.contains(v)]
    if outside:
        raise SweepError(
            f"{name!r} value {outside[0]!r} lies outside its HParam domain "
            f"{domain.describe()}; widen the domain or drop the value"
        )
    return domain


def declared_hparams(positional: Sequence[Any]) -> dict[str, Any]:
    """TensorBoard HParam objects by name; raises SweepError for anything else."""
    declared: dict[str, Any] = {}
    for hp in positional:
        if tb_kind(hp) != "HParam":
            raise SweepError(
                f"positional arguments must be TensorBoard HParam objects (got {hp!r}); "
                "give plain values as keywords, e.g. units=[16, 32]"
            )
        if hp.name in declared:
            raise SweepError(f"hparam {hp.name!r} is declared twice")
        declared[hp.name] = hp
    return declared


def parse_override(hparam: HParamDef, raw: Sequence[str]) -> list[Value]:
    """Parses `--hparams-set` text to the type of the hparam's values.

    Raises:
      SweepError: Naming the value and the type it should have had.
    """
    out: list[Value] = []
    for text in raw:
        value: Value
        if hparam.domain.dtype == "number":
            value = _number(hparam, text)
        elif hparam.domain.dtype == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise SweepError(f"{hparam.name}={text!r} is not true or false")
            value = text.lower() in ("true", "1")
        else:
            value = text
        out.append(value)
    return out


def _number(hparam: HParamDef, text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise SweepError(
            f"{hparam.name}={text!r} is not a number, as {hparam.name!r} values are"
        ) from None
    if _takes_ints(hparam):  # a float would change the hparam's type in ids and the dashboard
        raise SweepError(
            f"{hparam.name}={text!r} is not an int, as {hparam.name!r} values are; "
            f"give whole numbers, like {hparam.name}={hparam.values[0]}"
        )
    return value


def _takes_ints(hparam: HParamDef) -> bool:
    """Whether every value is an int, and no RealInterval says floats are welcome."""
    declared = getattr(hparam.declared, "domain", None)
    # A search's hparams have no values until asked: its set values make a choice.
    return (
        tb_kind(declared) != "RealInterval"
        and bool(hparam.values)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in hparam.values)
    )


_RESERVED = {
    "hparams": "the argument that passes all values as a dict",
    "trial": "the trial fixture",
    "hparams_repeat": "the number of a combination's repeat",
    "repeat": "the `repeat:K` part of a repeated trial's id",
    "case": "a column of the sweep's table",
    "duration": "a column of the sweep's table",
    "outcome": "a column of the sweep's table",
    "baseline": "a column of the sweep's table",
}


def check_name(name: object) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise SweepError(
            f"hparam names must be Python identifiers, since each is passed as an argument "
            f"(got {name!r})"
        )
    if name in _RESERVED:
        raise SweepError(
            f"{name!r} cannot be an hparam name: pytest-hparams uses it for "
            f"{_RESERVED[name]}; rename it"
        )


def _grid_values(name: str, raw: Any) -> tuple[Value, ...]:
    grid = tuple(scalar_value(name, v) for v in _grid_points(name, raw))
    if not grid:
        raise SweepError(f"{name!r} has no values; give at least one")
    _check_one_type_each_once(name, grid)
    return grid


def _grid_points(name: str, raw: Any) -> Sequence[Any]:
    """The points a grid argument lists: a TensorBoard domain's, or the sequence itself."""
    kind = tb_kind(raw)
    if kind == "Discrete":
        raw = raw.values
    elif kind == "IntInterval":
        raw = range(raw.min_value, raw.max_value + 1)
    elif kind == "RealInterval":
        raise SweepError(
            f"{name!r} is a RealInterval, which has no grid points; list them, "
            f"e.g. @hparam_grid(HP_{name.upper()}, {name}=[0.01, 0.1])"
        )
    if not isinstance(raw, (list, tuple, range)):
        raise SweepError(
            f"{name!r} must be a list, tuple, range or TensorBoard domain "
            f"(got {type(raw).__name__} {one_line(raw)}); {_sequence_fix(name, raw)}"
        )
    return raw


def _sequence_fix(name: str, raw: object) -> str:
    """How to write `raw`, which is not a list, tuple or range, as grid values."""
    if isinstance(raw, (set, frozenset)):
        return f"a set has no order, so ids would differ between runs: write {name}=sorted(...)"
    if hasattr(raw, "tolist"):  # a numpy array or a tensor
        return f"write {name}=values.tolist()"
    if isinstance(raw, dict):
        return f"list the values: {name}=[...]"
    return f"for a single value write {name}=[{one_line(raw)}]"


def _check_one_type_each_once(name: str, grid: Sequence[Value]) -> None:
    first = grid[0]
    seen: set[Value] = set()
    for v in grid:
        if dtype_of(v) != dtype_of(first):
            raise SweepError(f"{name!r} values must all be one type (got {first!r} and {v!r})")
        if v in seen:
            raise SweepError(f"{name!r} lists {v!r} more than once; give each value once")
        seen.add(v)


def scalar_value(name: str, value: object) -> Value:
    value = _unwrapped_numpy(value)
    if not isinstance(value, (bool, int, float, str)):
        fix = f"; write {name}=values.tolist()" if hasattr(value, "tolist") else ""
        raise SweepError(
            f"{name!r} values must be bool, int, float or str "
            f"(got {type(value).__name__} {one_line(value)}){fix}"
        )
    _check_representable(name, value)
    return value


def _unwrapped_numpy(value: object) -> object:
    # numpy scalars (np.float32(0.1), np.int64(3)) arrive from np.linspace and
    # friends; keep plain Python types, which xdist can send between processes.
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()  # type: ignore[attr-defined]
    return value


def _check_representable(name: str, value: Value) -> None:
    """Raises SweepError for a value TensorBoard cannot keep."""
    if isinstance(value, str):
        _check_text(name, value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise SweepError(f"{name!r} value {value!r} is not a finite number")
    elif not isinstance(value, bool):
        _check_fits_float64(name, value)


def _check_fits_float64(name: str, value: int) -> None:
    try:
        float(value)  # TensorBoard keeps numbers as float64
    except OverflowError:
        raise SweepError(
            f"{name!r} value is an int of {len(str(abs(value)))} digits, beyond "
            "float64 (TensorBoard's number type); give a smaller value or a str"
        ) from None


def _check_text(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SweepError(
            f"{name!r} value {value!r} is not valid text (it holds a lone surrogate); "
            "decode the bytes it came from with errors='replace'"
        ) from None


def one_line(value: object, limit: int = 60) -> str:
    """A value's repr on one line (a numpy array's spans several), cut to `limit`."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dtype_of(value: Value) -> DType:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "str"


def tb_domain_of(name: str, dom: Any) -> Domain:
    kind = type(dom).__name__
    if kind in ("IntInterval", "RealInterval"):
        low, high = finite_bounds(name, kind, dom.min_value, dom.max_value)
        return Domain("interval", "number", min_value=low, max_value=high)
    if kind == "Discrete":
        values = tuple(scalar_value(name, v) for v in dom.values)
        if not values:
            raise SweepError(f"HParam {name!r} has an empty Discrete domain")
        return Domain("discrete", dtype_of(values[0]), values=sorted_values(set(values)))
    raise SweepError(f"HParam {name!r} has an unsupported domain {dom!r}")


def finite_bounds(name: str, kind: str, low: Any, high: Any) -> tuple[float, float]:
    """An interval's bounds as floats; raises SweepError unless both are finite
    (TensorBoard drops an hparam whose domain or value is not)."""
    lo, hi = float(low), float(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise SweepError(
            f"{name!r} is a {kind} with bounds {low!r} and {high!r}; "
            "give finite bounds, such as RealInterval(0.0, 1.0)"
        )
    return lo, hi


def parse_metrics(raw: object) -> tuple[Metric, ...]:
    if raw is None:
        return ()
    if isinstance(raw, (str, Metric)) or not isinstance(raw, (list, tuple)):
        raise SweepError(
            f"metrics must be a list of names or Metric objects (got {raw!r}), "
            "e.g. metrics=['accuracy', Metric('loss', goal='min')]"
        )
    out: list[Metric] = []
    for m in raw:
        metric = _as_metric(m)
        _check_metric(metric, out)
        out.append(metric)
    return tuple(out)


def _check_metric(metric: Metric, earlier: Sequence[Metric]) -> None:
    """Raises SweepError for a metric with a problem, or one of `earlier` again."""
    problem = metric.problem()
    if problem:
        raise SweepError(problem)
    if any(o.name == metric.name and o.group == metric.group for o in earlier):
        raise SweepError(f"metric {metric.name!r} is declared twice")


def _as_metric(m: Any) -> Metric:
    """One entry of `metrics=`: a name, our Metric, or TensorBoard's."""
    if isinstance(m, str):
        return Metric(m)
    if isinstance(m, Metric):
        return m
    if tb_kind(m) == "Metric":
        info = m.as_proto()
        return Metric(
            info.name.tag,
            display_name=info.display_name,
            description=info.description,
            group=info.name.group,
        )
    raise SweepError(
        f"metrics entries must be names or Metric objects (got {type(m).__name__} {m!r})"
    )
