import numpy as np
import torch

from mvd.data import PretrainDataset, Sample, build_loader
from mvd.data.loader import seed_worker

PRE = dict(num_frames=8, stride=2, input_size=32, patch_size=16, tubelet_size=2, mask_ratio=0.5)


def dataset(videos, seed=0):
    paths = videos.good * 2
    return PretrainDataset([Sample(p, None, str(i)) for i, p in enumerate(paths)], seed=seed, **PRE)


def run(loader, epoch):
    loader.set_epoch(epoch)
    return [b for b in loader]


def test_same_seed_and_epoch_same_batches_any_worker_count(videos):
    a = run(build_loader(dataset(videos), 2, train=True, num_workers=0, seed=3), 1)
    b = run(build_loader(dataset(videos), 2, train=True, num_workers=2, seed=3), 1)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        assert all(torch.equal(u, v) for u, v in zip(x, y))
    c = run(build_loader(dataset(videos), 2, train=True, num_workers=0, seed=3), 2)
    assert not all(torch.equal(x[2], y[2]) for x, y in zip(a, c))


def test_distributed_shards_are_disjoint_and_cover(videos):
    seen = []
    for rank in range(2):
        loader = build_loader(dataset(videos), 1, train=False, rank=rank, world_size=2)
        loader.set_epoch(0)
        seen.append(list(iter(loader.sampler)))
    assert not set(seen[0]) & set(seen[1]) and sorted(seen[0] + seen[1]) == list(range(10))
    train = build_loader(dataset(videos), 1, train=True, rank=0, world_size=2, seed=5)
    train.set_epoch(0)
    first = list(iter(train.sampler))
    train.set_epoch(0)
    assert list(iter(train.sampler)) == first
    train.set_epoch(1)
    assert list(iter(train.sampler)) != first


class WorkerDraws(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.tensor([np.random.randint(2 ** 31), torch.utils.data.get_worker_info().id])


def test_workers_get_distinct_global_seeds():
    loader = torch.utils.data.DataLoader(WorkerDraws(), batch_size=1, num_workers=2,
                                         worker_init_fn=seed_worker)
    rows = torch.cat(list(loader))
    first_draw = {int(w): int(v) for v, w in rows.flip(0)}  # first item of each worker
    assert len(first_draw) == 2 and len(set(first_draw.values())) == 2
