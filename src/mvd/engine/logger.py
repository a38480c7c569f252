"""Training logs: a progress bar on the main rank, JSON lines and TensorBoard in the output dir."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from tqdm import tqdm


class RunLogger:
    def __init__(self, output_dir: Path, total_steps: int, initial_step: int, enabled: bool,
                 description: str, tensorboard: bool = True):
        self.enabled = enabled
        self.jsonl = None
        self.writer = None
        self.bar: Optional[tqdm] = None
        if not enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = open(output_dir / "metrics.jsonl", "a")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(output_dir / "tensorboard"))
        self.bar = tqdm(total=total_steps, initial=initial_step, desc=description,
                        dynamic_ncols=True, mininterval=1.0)
        self.last_time = time.perf_counter()

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def log(self, step: int, metrics: dict, show: bool = True) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **metrics}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, step)
        if show and self.bar is not None:
            shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in metrics.items()
                     if k in ("loss", "lr", "clips_per_s", "epoch", "acc1")}
            self.bar.set_postfix(shown, refresh=False)

    def message(self, text: str) -> None:
        if self.enabled:
            (self.bar.write if self.bar is not None else print)(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.jsonl is not None:
            self.jsonl.close()
