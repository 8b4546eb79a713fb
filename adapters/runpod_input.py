"""The `input` of a RunPod `/run`: the caller's extra input with the model name and parameters put in."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["build_run_input", "put_at_path"]


def put_at_path(target: dict[str, Any], dotted_path: str, value: Any) -> dict[str, Any]:
    """Set `value` at `dotted_path` ("a.b.c") in `target`, creating missing intermediate dicts.

    Returns the dict that holds the final key. Raises ValueError if a segment is empty or an
    existing intermediate value is not a dict (nothing is changed in that case).
    """
    segments = dotted_path.split(".")
    if any(not segment for segment in segments):
        raise ValueError(f"invalid dotted path {dotted_path!r}: empty segment")
    # Check the existing part of the path first so a failure leaves `target` untouched.
    node: dict[str, Any] = target
    for depth, segment in enumerate(segments[:-1]):
        if segment not in node:
            break  # the rest of the path is created below
        child = node[segment]
        if not isinstance(child, dict):
            where = ".".join(segments[: depth + 1])
            raise ValueError(
                f"cannot set {dotted_path!r}: {where!r} holds {type(child).__name__}, not an object"
            )
        node = child
    holder = target
    for segment in segments[:-1]:
        holder = holder.setdefault(segment, {})
    holder[segments[-1]] = value
    return holder


def build_run_input(
    extra_input: dict[str, Any],
    model_name_field: str,
    model_name: str,
    parameters: dict[str, Any],
) -> dict[str, Any]:
    """The `input` for `/run`: a deep copy of `extra_input` with the model name and parameters.

    `model_name` is put at `model_name_field` (usually `DEFAULT_MODEL_NAME_FIELD`,
    "training_config.model_name"); `parameters` are merged (shallowly, values deep-copied) into
    the object that holds that key, overriding `extra_input` values there. A parameter with the
    same name as the model-name key does not override the model name. The arguments are not
    modified.
    """
    run_input = copy.deepcopy(extra_input)
    holder = put_at_path(run_input, model_name_field, model_name)
    name_key = model_name_field.rsplit(".", 1)[-1]
    for key, value in parameters.items():
        if key != name_key:
            holder[key] = copy.deepcopy(value)
    return run_input
