"""The code stays readable: no function over 60 lines in the packages."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("model_contract", "service", "training")
MAX_FUNCTION_LINES = 60


def long_functions(folder: Path) -> list[str]:
    """`path:line name (lines)` for every function (or method) longer than the limit."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.name}:{node.lineno} {node.name} ({lines})")
    return found


def test_no_function_is_over_60_lines() -> None:
    too_long = [entry for package in PACKAGES for entry in long_functions(REPO / package)]
    assert not too_long, "split these into named steps: " + "; ".join(too_long)


def test_the_check_finds_a_long_method(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(
        f"class A:\n    def short(self) -> None:\n        pass\n\n"
        f"    async def long(self) -> None:\n{body}\n"
    )
    assert long_functions(tmp_path) == [f"long.py:5 long ({MAX_FUNCTION_LINES + 1})"]
