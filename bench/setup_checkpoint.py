"""Build a checkpoint of SHEET's plan with the first half already queued (benchmark setup).

Runs in its own process so the benchmark process stays small: a child's peak RSS as the
kernel reports it includes what the parent held when the child was forked.

    python -m bench.setup_checkpoint SHEET CHECKPOINT
"""

from __future__ import annotations

import sys
from pathlib import Path

from bulk_delete.plan.build import build_plan
from bulk_delete.plan.rules import PlanOptions, plan_fingerprint
from bulk_delete.store.checkpoint import Checkpoint


def main(sheet: Path, path: Path) -> None:
    options = PlanOptions()
    plan = build_plan(sheet, options)
    with Checkpoint.open(path) as checkpoint:
        count = checkpoint.store_plan(
            plan.requests(),
            plan.invalid,
            source=str(sheet.resolve()),
            fingerprint=plan_fingerprint(sheet, options),
            options=options.as_dict(),
            extra={"leads": str(plan.leads)},
        )
        checkpoint.mark_queued_up_to(count // 2)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
