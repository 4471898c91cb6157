"""When a trained model may become a version: the guard against publishing a worse model.

`train` writes into the models folder it is given, and a server watching that folder serves
the new version at once. So a model is published only when its test ROC-AUC is at least the
metadata-only baseline's (the shortcut it must beat) and at least `min_roc_auc`; a `--quick`
smoke run is never published. `--publish-anyway` overrides all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MIN_ROC_AUC = 0.95


@dataclass(frozen=True)
class PublishPolicy:
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC
    anyway: bool = False
    quick: bool = False  # a smoke run: never published unless `anyway`

    def refusal(self, test_metrics: dict[str, Any],
                baseline_metrics: dict[str, Any] | None) -> str | None:
        """None when the model may be published, else the one-line reason it may not (no
        final full stop: the CLI adds where the report is)."""
        if self.anyway:
            return None
        if self.quick:
            return "not published: a --quick smoke run (--publish-anyway overrides)"
        auc = float(test_metrics["roc_auc"]["value"])
        if baseline_metrics is not None:
            baseline = float(baseline_metrics["roc_auc"]["value"])
            if not auc >= baseline:
                return (f"not published: test ROC-AUC {auc:.4f} is below the metadata-only "
                        f"baseline's {baseline:.4f} (--publish-anyway overrides)")
        if not auc >= self.min_roc_auc:
            return (f"not published: test ROC-AUC {auc:.4f} is below --min-roc-auc "
                    f"{self.min_roc_auc:.4f} (--publish-anyway overrides)")
        return None
