"""Model health for the scorer: the shared table in `leadops.contract.health`.

The scorer measures (load errors, AUC, drift, age) and the contract decides, so the scorer
and the operator's derived health use one precedence and one set of thresholds.
A *rejected* reload (missing file, bad digest, AUC gate...) is not `error`: the
old model keeps serving and its own health stands.
"""

from __future__ import annotations

from leadops.contract.health import NOT_READY, Health, Thresholds, decide
from leadops.contract.health import Signals as Observed

__all__ = ["NOT_READY", "Health", "Observed", "Thresholds", "decide"]
