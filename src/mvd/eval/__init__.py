"""Evaluation: accuracies, single-view validation, multi-view testing, frozen-feature probes.

* ``metrics``: top-k counts and the per-epoch single-view validation of fine-tuning.
* ``multiview`` / ``merge``: per-rank per-view logits on disk, merged per video.
* ``features``: frozen clip features of any video model, sharded across ranks.
* ``probes``: linear probe (L-BFGS logistic regression) and weighted k-NN.
* ``models`` / ``predict``: loading the right model family; classifying single files.
"""
