"""Typed config schemas: what each config key of an architecture may hold, checked by one
function of the core, :func:`check_spec`, for every model before anything is built.

An architecture declares ``Architecture(schema=Schema(fields={...}, rules=(...),
params=...))``: a :class:`Field` per config key (type, range, finiteness, choices, odd,
divisibility by a number or another key, tuple entries and lengths), the input size under
the pseudo-keys ``img_size`` / ``seq_len``, named cross-key rules, and an estimate of the
parameter count. A key it does not declare, and every key of an architecture without a
schema, gets a field inferred from the variant's default value (:func:`inferred_field`):
an integer at least 1 (at least 0 if the default is 0) and at most ``INFERRED_MAX_INT``, a
finite float (not negative if the default is not), a bool, a string, a non-empty tuple.

Checks run in order, and each step may rely on the ones before: every key on its own, then
the keys' relations (``multiple_of`` and ``length`` naming another key), then the rules,
then the size bound. So a rule never sees a zero it would divide by.

No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archbench.core.errors import UsageError

if TYPE_CHECKING:
    from archbench.core.spec import ModelSpec

#: The input size as pseudo-keys of a schema, and how messages name them.
INPUT_KEYS = {"img_size": "image size", "seq_len": "sequence length"}
#: Upper bound of an integer key nobody declared: generous, and a key set to a billion
#: (``--set depth=1000000000``) is still refused before the model is built.
INFERRED_MAX_INT = 1 << 20
#: Longest tuple a key nobody declared may hold.
INFERRED_MAX_LENGTH = 64
#: Generous bounds for plugins' fields: blocks per stage, channels (or heads), classes.
#: Ten times the largest published model's, and a typo's thousandfold is still refused.
MAX_DEPTH = 1000
MAX_WIDTH = 1 << 16
MAX_CLASSES = 1 << 20
#: Parameters above which a model is refused, where its schema can estimate them: 1e11
#: parameters are 400 GB of fp32 weights, and the core builds each model whole, in fp32,
#: on the CPU to count it (training needs several times that).
MAX_PARAMS = 10**11


@dataclass(frozen=True)
class Field:
    """What one config key may hold.

    ``kind``: ``int``, ``float`` (finite; an int is accepted), ``bool``, ``str``, ``tuple``
    (a tuple or list) or ``object`` (anything). Bounds: ``minimum``/``maximum`` (inclusive),
    ``above``/``below`` (exclusive). ``choices``: the values allowed. ``odd``: an odd
    integer. ``multiple_of``: a number, or another key's name (``"num_heads"``, or
    ``"patch_size"`` under ``img_size``). For a tuple, ``items`` checks each entry and
    ``length`` fixes the number of entries: a number, or another tuple key's name (one
    entry per stage); ``min_length``/``max_length`` bound it otherwise. ``optional``:
    ``None`` is allowed.
    """

    kind: type = object
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[Any, ...] | None = None
    odd: bool = False
    multiple_of: int | str | None = None
    items: Field | None = None
    length: int | str | None = None
    min_length: int = 1
    max_length: int = INFERRED_MAX_LENGTH
    optional: bool = False


#: A cross-key rule: a module-level function (architectures are pickled) that returns what
#: is wrong with the spec in words naming the keys, or None. It runs after every field
#: passed, so the keys have their declared types and ranges.
Rule = Callable[["ModelSpec"], "str | None"]


@dataclass(frozen=True)
class Schema:
    """An architecture's config schema: ``fields`` by key (the input size under
    ``img_size``/``seq_len``), cross-key ``rules`` in order, and ``params(spec)``, an
    estimate of the parameter count (no torch; within a few percent is plenty) that the
    core refuses above ``MAX_PARAMS``. Everything in it must pickle: module-level
    functions, no lambdas."""

    fields: Mapping[str, Field] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    params: Callable[[ModelSpec], float] | None = None


def inferred_field(default: Any) -> Field:
    """The field of a key nobody declared, from its default value."""
    if default is None:
        return Field(object, optional=True)
    if isinstance(default, bool):
        return Field(bool)
    if isinstance(default, int):
        return Field(int, minimum=min(default, 1) if default >= 0 else None,
                     maximum=max(default, INFERRED_MAX_INT))
    if isinstance(default, float):
        return Field(float, minimum=0.0 if default >= 0 else None)
    if isinstance(default, str):
        return Field(str)
    if isinstance(default, (tuple, list)):
        kinds = {type(v) for v in default}
        items = None
        if len(kinds) == 1 and kinds <= {int, float}:
            items = inferred_field(min(default))
        elif len(kinds) == 1:
            items = inferred_field(default[0])
        return Field(tuple, items=items, min_length=min(len(default), 1),
                     max_length=max(len(default), INFERRED_MAX_LENGTH))
    return Field(object)


def fields_of(spec: ModelSpec) -> dict[str, Field]:
    """The field of every key the spec holds (config keys, then its input size): declared
    in the architecture's schema, or inferred from the variant's default."""
    declared = spec.arch.schema.fields if spec.arch.schema is not None else {}
    variant = spec.arch.variants.get(spec.variant)
    defaults = variant.config if variant is not None else {}
    fields = {key: declared.get(key) or inferred_field(defaults.get(key, value))
              for key, value in spec.config.items()}
    if spec.img_size is not None:
        fields["img_size"] = declared.get("img_size") or Field(int, minimum=1)
    if spec.seq_len is not None:
        fields["seq_len"] = declared.get("seq_len") or Field(
            int, minimum=1, maximum=spec.arch.max_seq_len)
    return fields


def check_spec(spec: ModelSpec) -> None:
    """Raise :class:`UsageError` (one line naming the spec and the key) for a config or
    input size that the architecture's schema refuses."""
    problem = first_problem(spec)
    if problem:
        raise UsageError(f"{spec.name}: {problem}")


def first_problem(spec: ModelSpec) -> str | None:
    """What :func:`check_spec` would refuse, as a phrase naming the key; None if nothing."""
    values = {**spec.config, **{key: getattr(spec, key) for key in INPUT_KEYS
                                if getattr(spec, key) is not None}}
    fields = fields_of(spec)
    for key, f in fields.items():
        if problem := _problem(key, f, values[key]):
            return problem
    for key, f in fields.items():
        if problem := _relation(key, f, values):
            return problem
    schema = spec.arch.schema
    if schema is None:
        return None
    for rule in schema.rules:
        if problem := rule(spec):
            return problem
    return _size(schema.params(spec)) if schema.params is not None else None


def _label(key: str) -> str:
    return INPUT_KEYS.get(key, key)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _problem(key: str, f: Field, value: Any) -> str | None:
    """What is wrong with ``value`` on its own, as a phrase naming ``key``; None if nothing."""
    name = _label(key)
    if value is None:
        return None if f.optional or f.kind is object else f"{name} must be set, got None"
    kind_error = _kind_problem(name, f.kind, value)
    if kind_error:
        return kind_error
    if f.choices is not None and value not in f.choices:
        return f"{name} must be one of {', '.join(map(repr, f.choices))}, got {value!r}"
    if f.kind in (int, float):
        return _range_problem(name, f, value)
    if f.kind is tuple:
        return _tuple_problem(key, f, value)
    return None


def _kind_problem(name: str, kind: type, value: Any) -> str | None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and not (number and isinstance(value, int)):
        return f"{name} must be an integer, got {value!r}"
    if kind is float and not number:
        return f"{name} must be a number, got {value!r}"
    if kind is float and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    if kind is bool and not isinstance(value, bool):
        return f"{name} must be true or false, got {value!r}"
    if kind is str and not isinstance(value, str):
        return f"{name} must be a string, got {value!r}"
    if kind is tuple and not isinstance(value, (tuple, list)):
        return f"{name} must be a tuple, got {value!r}"
    return None


def _range_problem(name: str, f: Field, value: float) -> str | None:
    shown = _num(value) if isinstance(value, int) else repr(value)
    if f.minimum is not None and value < f.minimum:
        return f"{name} must be at least {_num(f.minimum)}, got {shown}"
    if f.maximum is not None and value > f.maximum:
        return f"{name} must be at most {_num(f.maximum)}, got {shown}"
    if f.above is not None and value <= f.above:
        return f"{name} must be greater than {_num(f.above)}, got {shown}"
    if f.below is not None and value >= f.below:
        return f"{name} must be less than {_num(f.below)}, got {shown}"
    if f.odd and value % 2 == 0:
        return f"{name} must be odd, got {shown}"
    if isinstance(f.multiple_of, int) and value % f.multiple_of:
        return f"{name} {shown} is not divisible by {f.multiple_of}"
    return None


def _tuple_problem(key: str, f: Field, value: tuple | list) -> str | None:
    shown = tuple(value)
    if isinstance(f.length, int) and len(value) != f.length:
        return f"{key} must have {_entries(f.length)}, got {shown}"
    if len(value) < f.min_length:
        return f"{key} must have at least {_entries(f.min_length)}, got {shown}"
    if len(value) > f.max_length:
        return f"{key} must have at most {_entries(f.max_length)}, got {len(value)}"
    if f.items is not None:
        return next((p for i, v in enumerate(value)
                     if (p := _problem(f"{key}[{i}]", f.items, v))), None)
    return None


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _relation(key: str, f: Field, values: Mapping[str, Any]) -> str | None:
    """``multiple_of`` and ``length`` naming another key (skipped where it is absent)."""
    value = values[key]
    if isinstance(f.multiple_of, str) and values.get(f.multiple_of) is not None:
        other = values[f.multiple_of]
        if other == 0 or value % other:
            return (f"{_label(key)} {value} is not divisible by {_label(f.multiple_of)} "
                    f"{other}")
    if isinstance(f.length, str) and values.get(f.length) is not None:
        other = values[f.length]
        if len(value) != len(other):
            return (f"{key} {tuple(value)} must have as many entries as {f.length} "
                    f"{tuple(other)} (one per stage)")
    return None


def _size(params: float) -> str | None:
    if params <= MAX_PARAMS:
        return None
    return (f"about {params / 1e9:,.0f} billion parameters ({params * 4 / 1e12:,.1f} TB "
            f"of fp32 weights); archbench refuses models above {MAX_PARAMS / 1e9:,.0f} "
            "billion, since it builds each one whole to count it")
