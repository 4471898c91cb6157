"""The service imports TensorFlow without Keras, and still loads and runs the model."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from model_contract import find_version_dir
    from service.model import ModelRunner, configure_tensorflow_threads, warmup_image

    configure_tensorflow_threads(1, 1)
    runner = ModelRunner.load(find_version_dir(Path(sys.argv[1]), None))
    probability = runner.predict([warmup_image()])[0].tumor_probability
    assert 0.0 <= probability <= 1.0, probability
    print("keras loaded:", any(name.split(".")[0] == "keras" for name in sys.modules))
    import keras  # still importable for whoever needs it
    print("keras importable:", keras.__name__)
""")


def test_model_loads_and_answers_without_keras(exported_model_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(exported_model_dir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keras loaded: False" in done.stdout
    assert "keras importable: keras" in done.stdout


def test_the_app_imports_highdicom_only_when_a_report_is_made() -> None:
    """highdicom (~20 MiB) is needed only for `Accept: application/dicom` answers."""
    child = textwrap.dedent("""
        import sys
        import service.app
        print("at start:", "highdicom" in sys.modules)
        import service.dicom_report  # noqa: F401
        print("module alone:", "highdicom" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", child], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "at start: False" in done.stdout and "module alone: False" in done.stdout
