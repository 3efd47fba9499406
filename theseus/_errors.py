"""One exception hierarchy for every theseus code path.

Each class also subclasses the builtin a user would naturally catch (``ValueError``,
``LookupError``, ``TypeError``, ``ImportError``), and every message quotes the input and
says what would be right.
"""

from __future__ import annotations

__all__ = [
    "TheseusError",
    "DescriptorSyntaxError",
    "LayerNotFoundError",
    "NotALayerError",
    "BackendNotFoundError",
    "AmbiguousBackendError",
    "FrameworkConflictError",
    "UnsupportedOperation",
    "InvalidReplacementError",
    "StateMismatchError",
    "InvalidArgumentError",
    "ConfigError",
    "UnknownTypeError",
    "StateFileError",
]

#: Longest piece of user input an error message quotes (a 100k-character descriptor is
#: shown as its start and end, with how much was left out).
ECHO_LIMIT = 200


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` shortened to about ``limit`` characters for an error message."""
    text = str(text)
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}...<{len(text) - 2 * half} characters>...{text[-half:]}"


def clip_repr(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` shortened for an error message (never formats a huge string whole)."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        half = limit // 2
        return f"{value[:half]!r}...<{len(value) - 2 * half} characters>...{value[-half:]!r}"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    return clip(text, limit)


class TheseusError(Exception):
    """Base class of every error theseus raises on purpose."""


class DescriptorSyntaxError(TheseusError, ValueError):
    """A descriptor or pattern that does not parse.

    Attributes:
        text: the text that was parsed.
        position: 0-based index of the offending character.
    """

    def __init__(self, text: str, position: int, problem: str, hint: str = "") -> None:
        self.text = text
        self.position = position
        self.problem = problem
        self.hint = hint
        shown, at = text, position
        if len(text) > ECHO_LIMIT:  # show a window around the position, never the whole input
            lo = max(0, min(position - ECHO_LIMIT // 2, len(text) - ECHO_LIMIT))
            shown = ("..." if lo else "") + text[lo:lo + ECHO_LIMIT] + ("..." if lo + ECHO_LIMIT < len(text) else "")
            at = position - lo + (3 if lo else 0)
        caret = " " * at + "^"
        msg = f"{problem} at position {position} in descriptor {clip_repr(text)}\n    {shown}\n    {caret}"
        if hint:
            msg += f"\n{hint}"
        super().__init__(msg)


class LayerNotFoundError(TheseusError, LookupError):
    """A descriptor or pattern that names no layer of the model.

    Attributes:
        descriptor: the text that was looked up.
        resolved: the deepest prefix that did resolve ('' for the model itself).
        children: the children that exist at that prefix.
        suggestions: the closest existing descriptors.
    """

    def __init__(
        self,
        descriptor: str,
        message: str,
        resolved: str = "",
        children: tuple[str, ...] = (),
        suggestions: tuple[str, ...] = (),
    ) -> None:
        self.descriptor = descriptor
        self.resolved = resolved
        self.children = tuple(children)
        self.suggestions = tuple(suggestions)
        parts = [message]
        where = repr(resolved) if resolved else "the model itself"
        if children:
            parts.append(f"deepest prefix that resolved: {where}; its children: {', '.join(children)}")
        else:
            parts.append(f"deepest prefix that resolved: {where} (it has no children)")
        if suggestions:
            parts.append("did you mean: " + ", ".join(suggestions) + "?")
        parts.append("theseus.list_descriptors(model) lists every valid descriptor")
        super().__init__("\n".join(parts))

    def __str__(self) -> str:  # LookupError/KeyError would repr() the message
        return self.args[0]


class NotALayerError(LayerNotFoundError):
    """A descriptor that names a parameter or a plain attribute instead of a layer."""


class BackendNotFoundError(TheseusError, TypeError):
    """No installed backend recognises the object given as a model."""


class AmbiguousBackendError(TheseusError, TypeError):
    """More than one backend claims the object given as a model."""


class FrameworkConflictError(TheseusError, ImportError):
    """Two frameworks cannot be loaded in this process in the order they were imported."""


class UnsupportedOperation(TheseusError, RuntimeError):
    """The operation cannot give correct results for this backend, mode or model.

    Attributes:
        capability: the capability name that is missing (see ``theseus.CAPABILITIES``).
    """

    def __init__(self, message: str, capability: str = "") -> None:
        self.capability = capability
        super().__init__(message)


class InvalidReplacementError(TheseusError, TypeError):
    """A replacement function returned something that is not a layer of the model's framework."""


class StateMismatchError(TheseusError, ValueError):
    """Weights that do not fit the model: missing, unexpected or wrongly shaped entries."""

    def __init__(self, message: str, report: object = None) -> None:
        self.report = report
        super().__init__(message)


class InvalidArgumentError(TheseusError, TypeError):
    """An argument of the wrong type or kind (e.g. a number where descriptors were expected)."""


class ConfigError(TheseusError, ValueError):
    """A model config that cannot be built; the message starts with where in the config
    (``head.mid_channels``) and says what would be right.

    Attributes:
        path: the config path of the offending entry (``""`` for the config itself).
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class UnknownTypeError(ConfigError, LookupError):
    """A config ``type`` that nothing is registered under.

    Attributes:
        name: the type asked for.
        kind: ``backbone``, ``neck``, ``head``, ``activation``...
        registered: the names registered for that kind (on the backend asked for).
        suggestion: the closest registered name, or None.
    """

    def __init__(self, path: str, name: str, kind: str, registered: list, suggestion: object = None,
                 problem: str = "") -> None:
        self.name = name
        self.kind = kind
        self.registered = list(registered)
        self.suggestion = suggestion
        msg = problem or f"unknown {kind} type {name!r}"
        if suggestion:
            msg += f"; did you mean {suggestion!r}?"
        if registered:
            msg += f"; registered {kind} types: {', '.join(registered)}"
        msg += " (theseus.register(kind, name) adds one)"
        super().__init__(path, msg)

    def __str__(self) -> str:
        return self.args[0]


class StateFileError(TheseusError, ValueError):
    """A weights file that cannot be read or written safely (truncated, corrupt, not an
    ``.npz``, pickled objects, sizes that do not add up, a missing folder).

    Attributes:
        path: the file.
    """

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(f"{clip(self.path)}: {message}")
