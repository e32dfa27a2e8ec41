"""One record/dump API writing TensorBoard scalars, a CSV and the console.

Scalars are plotted against environment steps. Metric names (stable, documented):

- ``meta/return_pre_adapt``, ``meta/return_post_adapt``: mean undiscounted episode return
  before and after the inner adaptation, over the meta-batch.
- ``losses/surrogate_before``, ``losses/surrogate_after``, ``losses/kl``: outer objective.
- ``losses/inner_loss``: mean inner (policy-gradient) loss on pre-adaptation episodes.
- ``trpo/step_fraction``, ``trpo/backtracks``: the accepted line-search step.
- ``charts/env_steps``, ``charts/env_steps_per_s``, ``charts/iteration``.
- ``charts/refused_updates``: non-finite updates refused in a row, up to this iteration (0
  when its update was accepted; a refused iteration's row holds only the ``charts/`` keys).
- ``time/sample_s``, ``time/update_s``, ``time/iteration_s``: wall time, seconds.
- ``eval/...``: evaluation results.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def progress_rows(csv_path: Path) -> list[dict[str, str]]:
    """The whole rows of a progress.csv, as written (strings; "" where a row lacks a metric).

    A row cut short by a crash or a full disk (fields missing, or a value not a number) is
    left out, so a torn last row never stops a resume, a plot or a summary."""
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        return [
            row
            for row in reader
            if None not in row and all(v is not None and (v == "" or _is_number(v)) for v in row.values())
        ]


class Logger:
    """Writes each dumped record to TensorBoard (x = env steps) and `progress.csv`."""

    def __init__(self, run_dir: Path, resume_iteration: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "progress.csv"
        self._record: dict[str, float] = {}
        self._fieldnames: list[str] | None = None
        purge_step = None
        if resume_iteration is not None:
            purge_step = self._truncate_csv(resume_iteration)
        self.writer = SummaryWriter(str(self.run_dir), purge_step=purge_step)

    def _truncate_csv(self, iteration: int) -> int | None:
        """Keep CSV rows up to `iteration`; return the env-step count to purge TensorBoard from."""
        if not self.csv_path.exists():
            return None
        with self.csv_path.open(newline="") as handle:
            header = next(csv.reader(handle), None)
        rows = progress_rows(self.csv_path)
        kept = [row for row in rows if int(float(row["charts/iteration"])) <= iteration]
        if header:
            self._fieldnames = header
            with self.csv_path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self._fieldnames)
                writer.writeheader()
                writer.writerows(kept)
        return int(float(kept[-1]["charts/env_steps"])) + 1 if kept else 0

    def record(self, key: str, value: float) -> None:
        self._record[key] = value if isinstance(value, int) else float(value)

    def record_many(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.record(key, value)

    def dump(self, env_steps: int) -> dict[str, float]:
        """Write the current record at x = `env_steps` and start a new one."""
        record, self._record = self._record, {}
        for key, value in record.items():
            self.writer.add_scalar(key, value, global_step=env_steps)
        self.writer.flush()
        new_file = not self.csv_path.exists()
        if self._fieldnames is None:
            self._fieldnames = list(record.keys())
        new_keys = [key for key in record if key not in self._fieldnames]
        if new_keys and not new_file:  # a metric appeared: widen the header, keep the old rows
            rows = progress_rows(self.csv_path)
            self._fieldnames += new_keys
            with self.csv_path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=self._fieldnames)
                writer.writeheader()
                writer.writerows(rows)
        elif new_keys:
            self._fieldnames += new_keys
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self._fieldnames)
            if new_file:
                writer.writeheader()
            writer.writerow(record)
        return record

    def text(self, tag: str, markdown: str) -> None:
        self.writer.add_text(tag, markdown)

    def hyperparameters(self, config: dict[str, Any]) -> None:
        rows = "\n".join(f"|{key}|{value}|" for key, value in config.items())
        self.text("hyperparameters", f"|param|value|\n|-|-|\n{rows}")

    def close(self) -> None:
        self.writer.close()
