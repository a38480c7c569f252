"""Video (and image) data for MVD: decoding, annotation lists, sampling, augmentation, datasets
and loaders. ``ImageDataset`` serves MAE pretraining on image datasets (``mvd.data.images``).

    samples = read_list("k400_anno/train.csv", data_root="/data/k400")
    ds = PretrainDataset(samples, num_frames=16, stride=4, input_size=224, teacher_size=224)
    loader = build_loader(ds, batch_size=32, train=True, num_workers=8, seed=0)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for student, teacher, mask in loader: ...
"""
from .annotations import (NUM_CLASSES, SPLIT_FILES, Sample, load_annotations, read_class_folders,
                          read_list, split_file, video_id)
from .check import CheckReport, check_list, check_video
from .datasets import (DATASET_DEFAULTS, FinetuneDataset, PretrainDataset, MultiViewDataset,
                       SampleDataset, VideoDataset, dataset_defaults)
from .decode import (FrameFolderReader, PyAVReader, VideoReader, decord_available, open_video,
                     read_all_frames)
from .errors import AnnotationError, DataError, DecodeError, ImageDecodeError, VideoDecodeError
from .images import ImageDataset, is_image_source, load_image_samples, read_image
from .loader import (EpochLoader, build_loader, finetune_collate, pretrain_collate, seed_worker,
                     multiview_collate)
from .mixup import Mixup, soft_target_cross_entropy
from .randaugment import VideoRandAugment
from .synth import make_synthetic_dataset
from .transforms import PIXEL_FORMATS, batch_to_device, normalize_batch

__all__ = ["AnnotationError", "CheckReport", "DATASET_DEFAULTS", "DataError", "DecodeError", "EpochLoader",
           "FinetuneDataset", "ImageDataset", "PIXEL_FORMATS", "batch_to_device", "normalize_batch", "ImageDecodeError", "SampleDataset", "is_image_source",
           "load_image_samples", "read_image", "FrameFolderReader", "Mixup", "NUM_CLASSES", "PretrainDataset",
           "PyAVReader", "SPLIT_FILES", "Sample", "MultiViewDataset", "VideoDataset",
           "VideoDecodeError", "VideoRandAugment", "VideoReader", "build_loader", "check_list",
           "check_video", "dataset_defaults", "decord_available", "finetune_collate",
           "load_annotations", "make_synthetic_dataset", "open_video", "pretrain_collate",
           "read_all_frames", "read_class_folders", "read_list", "seed_worker", "split_file",
           "soft_target_cross_entropy", "multiview_collate", "video_id"]
