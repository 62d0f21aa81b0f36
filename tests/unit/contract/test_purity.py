"""Import layers: the operator image has no numpy/xgboost, so what it imports must be pure."""

from __future__ import annotations

import subprocess
import sys

PURE = ["lead", "rows", "features", "card", "drift", "artifact"]


def test_pure_contract_modules_import_without_numpy_or_xgboost() -> None:
    code = (
        "import sys\n"
        + "".join(f"import leadops.contract.{name}\n" for name in PURE)
        + "heavy = sorted(m for m in ('numpy', 'xgboost', 'phonenumbers') if m in sys.modules)\n"
        + "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
