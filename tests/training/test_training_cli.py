"""Every wrong command line fails fast: one sentence on stderr, non-zero exit, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic_images import write_dataset

from training.cli import ARCHITECTURE_CHOICES, main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = int(exit_.code or 0)
    err = capsys.readouterr().err
    return code, err


def _train(data: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(tmp_path / "models"),
            "--run-dir", str(tmp_path / "run"), *extra]


def _one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and lines[0].endswith("."), err
    return lines[0]


def _folders(root: Path, counts: dict[str, int]) -> Path:
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            (root / name / f"{index}.png").write_bytes(b"not read by the layout check")
    return root


def test_missing_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(_train(tmp_path / "nowhere", tmp_path), capsys)
    assert code == 2
    assert "does not exist" in _one_sentence(err) and "nowhere" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "models").exists()


def test_fewer_than_two_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folders(tmp_path / "data", {"tumor": 12})
    code, err = _run(_train(data, tmp_path), capsys)
    assert code == 2
    assert "has 1 class folder(s) ('tumor'); it needs two" in _one_sentence(err)


def test_more_than_two_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folders(tmp_path / "data", {"tumor": 12, "healthy": 12, "other": 12})
    code, err = _run(_train(data, tmp_path), capsys)
    assert code == 2
    assert "needs exactly two" in _one_sentence(err)


def test_class_with_too_few_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folders(tmp_path / "data", {"tumor": 12, "healthy": 4})
    code, err = _run(_train(data, tmp_path), capsys)
    assert code == 2
    assert "healthy' has 4 file(s); at least 10 images per class" in _one_sentence(err)
    # The limit is an option.
    code, err = _run(_train(data, tmp_path, "--min-images-per-class", "5"), capsys)
    assert code == 2 and "at least 5 images" in err


def test_unknown_positive_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folders(tmp_path / "data", {"tumor": 12, "healthy": 12})
    code, err = _run(_train(data, tmp_path, "--positive-class", "glioma"), capsys)
    assert code == 2
    assert "positive class 'glioma' is not one of the class folders" in _one_sentence(err)


def test_bad_option_value_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folders(tmp_path / "data", {"tumor": 12, "healthy": 12})
    code, err = _run(_train(data, tmp_path, "--epochs", "0"), capsys)
    assert code == 2
    assert "--epochs" in _one_sentence(err)
    code, err = _run(_train(data, tmp_path, "--image-size", "8"), capsys)
    assert code == 2 and "--image-size must be at least 16" in _one_sentence(err)
    code, err = _run(_train(data, tmp_path, "--architecture", "resnet"), capsys)
    assert code == 2 and "invalid choice: 'resnet'" in _one_sentence(err)
    code, err = _run(_train(data, tmp_path, "--architecture", "seed", "--width", "48"), capsys)
    assert code == 2 and "--width applies to the compact architecture only" in _one_sentence(err)


def test_evaluate_rejects_a_folder_that_is_not_an_exported_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _folders(tmp_path / "data", {"tumor": 12, "healthy": 12})
    (tmp_path / "empty-model").mkdir()
    argv = ["evaluate", "--data", str(data), "--report", str(tmp_path / "report")]
    code, err = _run([*argv, "--model", str(tmp_path / "empty-model")], capsys)
    assert code == 2 and "is not an exported model" in _one_sentence(err)
    code, err = _run([*argv, "--model", str(tmp_path / "missing")], capsys)
    assert code == 2 and "does not exist" in _one_sentence(err)


def test_errors_come_before_tensorflow_is_imported(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", per_class=3, size=16)
    script = (
        "import sys\n"
        "from training.cli import main\n"
        f"code = main(['train', '--data', {str(data)!r}, '--out', {str(tmp_path / 'm')!r}])\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 2
    assert result.stdout.strip() == "False False"
    assert "has 3 file(s); at least 10" in result.stderr


def test_architecture_choices_match_the_architectures_module() -> None:
    from training.architectures import ARCHITECTURES

    assert sorted(ARCHITECTURE_CHOICES) == sorted(ARCHITECTURES)


def test_quick_run_trains_every_step_but_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_dataset(tmp_path / "data", per_class=16, size=40)
    code, err = _run(_train(data, tmp_path, "--quick", "--image-size", "32"), capsys)
    assert code == 2
    line = _one_sentence(err)
    assert "--quick" in line and str(tmp_path / "run" / "report.json") in line
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["model"]["published"] is False and report["model"]["exported_to"] is None
    assert not any((tmp_path / "models").glob("*/[0-9]*"))  # no version, no leftover


def test_folds_must_be_at_least_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _folders(tmp_path / "data", {"yes": 12, "no": 12})
    code, err = _run(_train(data, tmp_path, "--folds", "1"), capsys)
    assert code == 2 and "--folds" in _one_sentence(err)
