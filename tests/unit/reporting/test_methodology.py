"""The methodology register names every method of the analysis code at its code version."""

from __future__ import annotations

from pathlib import Path

import pytest

from cointrail.errors import ValidationError
from cointrail.reporting import code_methods, load_methodology


def test_register_names_every_method_of_the_code_at_its_version() -> None:
    register = load_methodology()
    for key, methods in code_methods().items():
        section = register.section(key)
        written = {m.name: m.version for m in section.methods}
        missing = sorted(set(methods) - set(written))
        assert not missing, f"methodology.yaml section {key} lacks {missing}"
        stale = sorted(set(written) - set(methods))
        assert not stale, f"methodology.yaml section {key} names methods the code lacks: {stale}"
        for name, version in methods.items():
            if version is None:  # versioned with the engine (taint models)
                assert section.versioned_by, f"{key}.{name} has no version and no versioned_by"
                assert written[name] is None, f"{key}.{name}: the code has no version"
            else:
                assert written[name] == version, (
                    f"{key}.{name}: methodology.yaml says version {written[name]}, the code "
                    f"{version}; update the register (and its accuracy figures)")


def test_every_method_has_a_citation_and_an_accuracy_statement() -> None:
    for section in load_methodology().sections:
        for m in section.methods:
            assert m.citation and m.accuracy, f"{section.key}.{m.name}"
            assert all(a.source for a in m.accuracy)


def test_a_broken_register_is_rejected_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: '1'\nsections:\n  - key: x\n    title: X\n    code: x.py\n"
                    "    methods:\n      - name: a\n        title: A\n")
    with pytest.raises(ValidationError) as info:
        load_methodology(path)
    text = str(info.value)
    assert "missing 'version'" in text and "missing or empty 'citation'" in text
