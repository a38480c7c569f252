"""What a run says about one teacher: which model, which weights, what it sees, which layer is
the target, and how much its loss counts. Plain data, checked once with actionable errors."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Optional

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOSSES = ("smooth_l1", "l2", "l1")


@dataclass
class TeacherSpec:
    """One teacher of a distillation run.

    ``model``: a registry name of ours (``image_teacher_base``, ``video_teacher_large``, ...) or
    ``transformers`` (a Hugging Face model folder or hub id in ``checkpoint``).
    ``input_size``: the resolution a frames teacher sees (e.g. 196 for patch-14 models; default
    the run's teacher resolution). ``layer``: the block whose tokens are the target (default the
    last; negative counts from the end). ``weight``: λ of its loss; ``loss``: its own loss
    (default the run's). ``recipe``: a pretraining recipe that creates a missing checkpoint.
    """

    name: str
    model: str
    checkpoint: str = ""
    options: dict = field(default_factory=dict)
    recipe: Optional[str] = None
    input_size: Optional[int] = None
    layer: Optional[int] = None
    weight: float = 1.0
    loss: Optional[str] = None

    def validate(self) -> "TeacherSpec":
        where = f"teacher {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"teacher name {self.name!r} must be a word of letters, digits and "
                             "underscores (it names the student's decoder)")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"{where}: 'model' is required (a registry name such as "
                             "image_teacher_base, or 'transformers')")
        if not isinstance(self.options, dict):
            raise ValueError(f"{where}: 'options' must be a mapping, got {self.options!r}")
        if self.input_size is not None and (not isinstance(self.input_size, int) or self.input_size <= 0):
            raise ValueError(f"{where}: input_size must be a positive integer, got {self.input_size!r}")
        if self.layer is not None and not isinstance(self.layer, int):
            raise ValueError(f"{where}: layer must be an integer block index, got {self.layer!r}")
        if not isinstance(self.weight, (int, float)) or self.weight < 0:
            raise ValueError(f"{where}: weight must be a number >= 0, got {self.weight!r}")
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"{where}: loss must be one of {LOSSES}, got {self.loss!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def parse_teacher_specs(entries) -> list[TeacherSpec]:
    """Specs from a YAML / JSON list of mappings; unknown keys and repeated names are errors."""
    if not isinstance(entries, (list, tuple)):
        raise ValueError(f"teacher_list must be a list of mappings, got {entries!r}")
    known = [f.name for f in fields(TeacherSpec)]
    specs = []
    for entry in entries:
        if isinstance(entry, TeacherSpec):
            specs.append(entry.validate())
            continue
        if not isinstance(entry, dict):
            raise ValueError(f"each teacher_list entry is a mapping with keys {known}, got {entry!r}")
        unknown = sorted(set(entry) - set(known))
        if unknown:
            raise ValueError(f"teacher {entry.get('name')!r}: unknown key(s) {unknown}; "
                             f"a teacher takes {known}")
        if "name" not in entry or "model" not in entry:
            raise ValueError(f"teacher entry {entry!r} needs at least 'name' and 'model'")
        specs.append(TeacherSpec(**entry).validate())
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"teacher name(s) {repeated} appear more than once; names must be unique")
    return specs
