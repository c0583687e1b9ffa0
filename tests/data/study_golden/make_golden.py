"""Regenerate the study's golden tables (tests/data/study_golden/tables).

    PYTHONPATH=. python tests/data/study_golden/make_golden.py

Run this only from a commit whose study output is known good: the golden files pin
the study's tables byte for byte (see README.md here for the commit that made them).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CHECKPOINT = ROOT / "tests" / "fixtures" / "lenet5_ns_prune.pt"


def golden_config():
    from simulator.study import StudyConfig

    return StudyConfig(
        networks=("lenet5", str(HERE / "tiny.yaml")),
        platforms=("eie", "a100", "scalesim_32x32_ws"),
        weight_bits=(4, 8),
        index_bits=(4,),
        structured_rates=(2.0, 4.0),
        sweep_rates=(2.0, 8.0, 32.0),
        checkpoints={"lenet5": str(CHECKPOINT)},
    )


def main() -> int:
    from simulator.study import run_study
    from simulator.study.output import write_study

    with tempfile.TemporaryDirectory() as tmp:
        result = run_study(golden_config(), Path(tmp) / "study", jobs=1)
        write_study(result)
        target = HERE / "tables"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(tmp) / "study" / "tables", target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
