"""The package's public API (smartmkt/__init__.py): each name resolves, `import smartmkt` stays
light, and every public function and method of it says what its arguments are."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import smartmkt


def _documented(obj: object) -> list[tuple[str, object]]:
    """The callables a user meets: the object itself, and a class's public methods."""
    if not inspect.isclass(obj):
        return [(getattr(obj, "__qualname__", repr(obj)), obj)]
    found: list[tuple[str, object]] = [(obj.__qualname__, obj)]
    for name, member in vars(obj).items():
        if name.startswith("_"):
            continue
        function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
        if inspect.isfunction(function):
            found.append((f"{obj.__qualname__}.{name}", function))
    return found


def test_every_public_name_resolves_to_its_definition() -> None:
    assert sorted(smartmkt.__all__) == sorted(smartmkt._PUBLIC), "__all__ lists the public API"
    for name in smartmkt.__all__:
        assert getattr(smartmkt, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        smartmkt.nonexistent  # noqa: B018


def test_importing_the_package_loads_no_heavy_library() -> None:
    """Rasa's environment imports smartmkt's masking module; it has no torch or FAISS."""
    heavy = "('torch', 'faiss', 'sqlalchemy', 'polars')"
    code = f"import sys, smartmkt; print(sorted(m for m in {heavy} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("name", smartmkt.__all__)
def test_public_callables_document_their_arguments(name: str) -> None:
    missing = []
    for qualname, function in _documented(getattr(smartmkt, name)):
        doc = inspect.getdoc(function) or ""
        if not doc:
            missing.append(f"{qualname}: no docstring")
            continue
        if inspect.isclass(function) or not callable(function):
            continue
        parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        missing += [f"{qualname}: {p} not described" for p in parameters if f"``{p}``" not in doc]
    assert not missing, "\n".join(missing)
