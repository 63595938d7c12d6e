"""Loading the config tree: YAML files (with ``bases:``), the ``--debug-small`` overlay, flags and overrides.

Precedence (later wins): dataclass defaults < ``bases:`` files named by the YAML < the YAML
file itself < the ``--debug-small`` overlay < CLI flags < dotted overrides. Unknown keys, values
of the wrong type, non-finite numbers and values outside a key's bounds are errors that name the
key (and where it was set), say what is allowed and suggest the closest valid key; every problem
is reported at once. Cross-key rules follow in ``src.config.checks``.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from src.config.checks import check_config
from src.config.resources import CONFIGS, find_input
from src.config.schema import AUTO, DEBUG_OVERLAY, DEFAULT_CONFIG, Config
from src.utils.errors import UserError


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp)


def all_keys(cls: type = Config, prefix: str = "") -> dict[str, tuple[Any, dataclasses.Field]]:
    """Every leaf key as 'section.sub.key' -> (type, field)."""
    out: dict[str, tuple[Any, dataclasses.Field]] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if _is_section(hints[f.name]):
            out.update(all_keys(hints[f.name], key + "."))
        else:
            out[key] = (hints[f.name], f)
    return out


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if not close:
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in valid if k.rsplit(".", 1)[-1] == leaf][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------- value coercion

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert a YAML or command-line value to the field's type, or raise ValueError."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if str in args and int in args:  # a number or the word auto (inference.max_new_tokens)
            if isinstance(value, str) and value.strip().lower() == AUTO:
                return AUTO
            try:
                return coerce(key, value, int)
            except ValueError:
                raise ValueError(f"must be an integer or {AUTO}") from None
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "~", "")):
            return None
        return coerce(key, value, args[0])
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value)) if _is_integral(value) else int(value)
            except (ValueError, OverflowError):
                raise ValueError("must be an integer") from None
        raise ValueError("must be an integer")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ValueError("expected a string")
        return str(value)
    if origin is tuple:
        return _coerce_tuple(key, value, typing.get_args(tp)[0])
    if tp is dict or origin is dict:
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip() else {}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping like {a: 1}")
        return dict(value)
    raise ValueError(f"unsupported type {tp}")


def _is_integral(text: str) -> bool:
    try:
        return float(text).is_integer() and any(c in text.lower() for c in "e.")
    except ValueError:
        return False


def _coerce_tuple(key: str, value: Any, item_tp: Any) -> tuple:
    if isinstance(value, str):
        text = value.strip()
        value = yaml.safe_load(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list")
    return tuple(coerce(key, v, item_tp) for v in value)


# ---------------------------------------------------------------- loading


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not _is_dict_leaf(key):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def _is_dict_leaf(key: str) -> bool:
    entry = all_keys().get(key)
    return entry is not None and (entry[0] is dict or typing.get_origin(entry[0]) is dict)


class DuplicateKey(Exception):
    """A mapping key given twice in one YAML file (its two line numbers, 1-based)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        self.key, self.first, self.second = key, first, second
        super().__init__(f"key {key!r} on lines {first} and {second}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last one silently,
    so a second ``training:`` block would drop every key of the first)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if isinstance(key, (str, int, float, bool)) and key in first_line:
            raise DuplicateKey(key, first_line[key], line)
        if isinstance(key, (str, int, float, bool)):
            first_line[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML like ``yaml.safe_load``, but a key given twice in one mapping is a UserError naming it and both
    lines (``where`` names the file)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no tags run code
    except DuplicateKey as dup:
        raise UserError(f"{where}: key '{dup.key}' is given twice (lines {dup.first} and {dup.second}); the second "
                        "would silently replace the first: merge the two into one") from None


def read_yaml(path: Path, _seen: Optional[set] = None) -> dict[str, Any]:
    """Read a config YAML into flat 'a.b' keys, following its ``bases:`` list first."""
    path = Path(path)
    seen = _seen or set()
    if path.resolve() in seen:
        raise UserError(f"{path}: 'bases' includes itself in a cycle; remove the loop")
    seen.add(path.resolve())
    if not path.is_file():
        raise UserError(f"{path}: config file not found; pass an existing file to --config")
    try:
        tree = load_yaml_text(path.read_text(encoding="utf-8-sig"), str(path)) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the syntax") from None
    if not isinstance(tree, dict):
        raise UserError(f"{path}: the top level must be a mapping of config sections")
    flat: dict[str, Any] = {}
    bases = tree.pop("bases", []) or []
    for base in [bases] if isinstance(bases, str) else bases:
        flat.update(read_yaml(_base_path(path, base), seen))
    flat.update({k: (v, str(path)) for k, v in _flatten(tree).items()})
    return flat


def _base_path(config: Path, base: str) -> Path:
    """A ``bases:`` entry: next to the file that names it, else among the shipped configs (``models/NAME.yaml``)."""
    beside = config.parent / base
    shipped = CONFIGS / base
    return shipped if not beside.is_file() and shipped.is_file() else beside


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``key.sub=value`` strings into flat entries tagged with their origin."""
    flat: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}': expected key.sub=value (e.g. training.learning_rate=2e-4)")
        key, value = item.split("=", 1)
        flat[key.strip()] = (value, "command line")
    return flat


def build_config(flat: dict[str, tuple[Any, str]]) -> Config:
    """Build the typed tree from flat entries; every problem is reported at once."""
    schema = all_keys()
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, (raw, origin) in flat.items():
        if key not in schema:
            problems.append(f"{origin}: unknown config key '{key}'{_suggest(key, list(schema))}")
            continue
        tp, fld = schema[key]
        try:
            value = coerce(key, raw, tp)
        except (ValueError, TypeError) as exc:
            problems.append(f"{origin}: config key '{key}' = {raw!r}: {exc} (default {_default(fld)!r})")
            continue
        choices = fld.metadata.get("choices")
        if choices and not_a_choice(value, choices):
            problems.append(f"{origin}: config key '{key}' = {value!r}: must be {_one_of(value, choices)}")
            continue
        bound = bound_problem(value, fld)
        if bound:
            problems.append(f"{origin}: config key '{key}' = {value!r}: {bound}")
            continue
        values[key] = value
    if problems:
        raise UserError(*problems)
    return _assemble(Config, values)


def not_a_choice(value: Any, choices: tuple) -> bool:
    """Whether ``value`` (each item of a list key) is outside the key's choices."""
    return any(v not in choices for v in value) if isinstance(value, tuple) else value not in choices


def _one_of(value: Any, choices: tuple) -> str:
    return ("a list of " if isinstance(value, tuple) else "one of ") + ", ".join(map(str, choices))


_BOUNDS = (("ge", ">=", lambda v, b: v >= b), ("gt", ">", lambda v, b: v > b),
           ("le", "<=", lambda v, b: v <= b), ("lt", "<", lambda v, b: v < b))


def bound_problem(value: Any, fld: dataclasses.Field) -> Optional[str]:
    """What is wrong with ``value`` under the field's bounds (each item of a tuple), or None."""
    rules = [(sign, test, fld.metadata.get(name)) for name, sign, test in _BOUNDS if fld.metadata.get(name) is not None]
    if not rules or value is None:
        return None
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str):  # "auto" where a number may also be given
            continue
        failed = [f"{sign} {bound:g}" for sign, test, bound in rules if not test(item, bound)]
        if failed:
            wanted = " and ".join(f"{sign} {bound:g}" for sign, _, bound in rules)
            return f"must be {wanted}; set it within that range (default {_default(fld)!r})"
    return None


def _default(fld: dataclasses.Field) -> Any:
    return fld.default_factory() if fld.default_factory is not dataclasses.MISSING else fld.default


def section_problems(section: Any, prefix: str) -> list[str]:
    """Choices, finite numbers and bounds of every key of a built section (e.g. per-call generation overrides)."""
    problems = []
    for fld in dataclasses.fields(section):
        value, key = getattr(section, fld.name), f"{prefix}.{fld.name}"
        if dataclasses.is_dataclass(value):
            problems += section_problems(value, key)
            continue
        choices = fld.metadata.get("choices")
        numbers = value if isinstance(value, tuple) else (value,)
        if choices and not_a_choice(value, choices):
            problems.append(f"config key '{key}' = {value!r}: must be {_one_of(value, choices)}")
        elif any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            problems.append(f"config key '{key}' = {value!r}: must be a finite number (default {_default(fld)!r})")
        elif bound_problem(value, fld):
            problems.append(f"config key '{key}' = {value!r}: {bound_problem(value, fld)}")
    return problems


def _assemble(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if _is_section(hints[f.name]):
            kwargs[f.name] = _assemble(hints[f.name], values, key + ".")
        elif key in values:
            kwargs[f.name] = values[key]
    return cls(**kwargs)


def load_config(path: Optional[Path], overrides: list[str], debug_small: bool = False,
                flag_values: Optional[dict[str, Any]] = None) -> Config:
    """Load defaults < YAML (with bases) < debug overlay < CLI flags < dotted overrides."""
    flat = read_yaml(Path(path) if path else DEFAULT_CONFIG)
    if debug_small:
        flat.update(read_yaml(DEBUG_OVERLAY))
    flat.update({k: (v, "command line") for k, v in (flag_values or {}).items()})
    flat.update(parse_overrides(overrides))
    cfg = build_config(flat)
    check_config(cfg)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """The resolved config as plain YAML-friendly data (tuples become lists); the password of a URL with
    ``user:password@`` in it (``augmentation.api.base_url``) becomes ``***``, since this is what is printed and saved."""
    from src.utils.secrets import redact_url

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return redact_url(v) if isinstance(v, str) and "@" in v else v
    return {k: (to_dict(v) if dataclasses.is_dataclass(v) else plain(v))
            for k, v in ((f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg))}


def resolve_path(path: str | Path, base: Optional[Path] = None) -> Path:
    """A config path: absolute as given, else relative to ``base`` (default: the working directory)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base or Path.cwd()) / p


def resolve_input(path: str | Path) -> Path:
    """An input folder or file of the config (``paths.data_dir``, a rule table): the working directory's, else the
    shipped one of that name (``src.config.resources.find_input``)."""
    return find_input(path)
