"""Job arguments <-> the JSON stored on a row.

Stored shape (compatible with the published plain.worker):
``{"args": [...], "kwargs": {...}}`` where every value is JSON, except

- a model instance: ``"__plain://model/<package_label>/<model_name>/<id>"``
  (the older ``"gid://<package_label>/<model_name>/<id>"`` is still read),
- a date: ``"__plain://date/<iso>"``, a datetime: ``"__plain://datetime/<iso>"``.

Anything else is refused at encode time with a TypeError that names the
argument, so a bad value fails where the caller can see it instead of hours
later in a worker.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, TypedDict

from .exceptions import ParameterNotFound

PREFIX = "__plain://"
MODEL_PREFIX = f"{PREFIX}model/"
DATE_PREFIX = f"{PREFIX}date/"
DATETIME_PREFIX = f"{PREFIX}datetime/"
LEGACY_MODEL_PREFIX = "gid://"


class JobParameters(TypedDict):
    args: list[Any]
    kwargs: dict[str, Any]


def encode(args: tuple[Any, ...], kwargs: dict[str, Any]) -> JobParameters:
    """Encode constructor arguments, raising TypeError naming any bad argument."""
    return {
        "args": [_encode(value, f"args[{i}]") for i, value in enumerate(args)],
        "kwargs": {key: _encode(value, f"kwargs[{key!r}]") for key, value in kwargs.items()},
    }


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"Job argument {where} is {value!r}, which JSON cannot store.")
        return value
    if isinstance(value, str):
        if value.startswith((PREFIX, LEGACY_MODEL_PREFIX)):
            raise TypeError(
                f"Job argument {where} starts with a prefix reserved for stored "
                f"references ({value[:20]!r}...); pass the object itself instead."
            )
        return value
    if isinstance(value, datetime.datetime):
        return f"{DATETIME_PREFIX}{value.isoformat()}"
    if isinstance(value, datetime.date):
        return f"{DATE_PREFIX}{value.isoformat()}"
    if isinstance(value, list | tuple):
        return [_encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        encoded = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"Job argument {where} has a {type(key).__name__} key {key!r}; only string keys can be stored."
                )
            encoded[key] = _encode(item, f"{where}[{key!r}]")
        return encoded
    meta = getattr(type(value), "_meta", None)
    if meta is not None and hasattr(meta, "package_label"):
        if value.id is None:
            raise TypeError(f"Job argument {where} is an unsaved {type(value).__name__}; save it first.")
        return f"{MODEL_PREFIX}{meta.package_label}/{meta.model_name}/{value.id}"
    raise TypeError(
        f"Job argument {where} is a {type(value).__module__}.{type(value).__qualname__}, "
        "which cannot be stored. Pass JSON values, model instances, dates or datetimes."
    )


def decode(parameters: JobParameters | None) -> tuple[list[Any], dict[str, Any]]:
    """Rebuild (args, kwargs); raises ParameterNotFound for a deleted model row."""
    if not parameters:
        return [], {}
    args = [_decode(value) for value in parameters.get("args", [])]
    kwargs = {key: _decode(value) for key, value in parameters.get("kwargs", {}).items()}
    return args, kwargs


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        if value.startswith(MODEL_PREFIX):
            return _load_model(value, value[len(MODEL_PREFIX) :])
        if value.startswith(DATETIME_PREFIX):
            return datetime.datetime.fromisoformat(value[len(DATETIME_PREFIX) :])
        if value.startswith(DATE_PREFIX):
            return datetime.date.fromisoformat(value[len(DATE_PREFIX) :])
        if value.startswith(LEGACY_MODEL_PREFIX):
            return _load_model(value, value[len(LEGACY_MODEL_PREFIX) :])
        return value
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dict):
        return {key: _decode(item) for key, item in value.items()}
    return value


def _load_model(reference: str, path: str) -> Any:
    from plain.models import models_registry

    package_label, model_name, object_id = path.split("/", 2)
    try:
        model = models_registry.get_model(package_label, model_name)
    except LookupError as error:
        raise ParameterNotFound(f"{reference} (no such model: {error})") from None
    try:
        return model.objects.get(id=object_id)
    except model.DoesNotExist:
        raise ParameterNotFound(reference) from None
