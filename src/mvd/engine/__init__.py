"""The training engine shared by every stage: schedules, optimizer groups, loop, checkpoints."""
from .distributed import DistInfo, init_distributed
from .loop import NonFiniteLossError, OptimConfig, TrainJob, fit, seed_everything
from .optim import build_optimizer, layer_scales, parameter_groups
from .schedules import cosine_schedule, scaled_lr, total_batch_size
from .state import latest_good_checkpoint, list_checkpoints

__all__ = ["DistInfo", "init_distributed", "NonFiniteLossError", "OptimConfig", "TrainJob", "fit",
           "seed_everything", "build_optimizer", "layer_scales", "parameter_groups",
           "cosine_schedule", "scaled_lr", "total_batch_size", "latest_good_checkpoint",
           "list_checkpoints"]
