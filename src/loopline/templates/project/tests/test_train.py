"""Tests of the sample's training code: fast, no MLflow store needed."""

import json

from train import evaluate, export_heldout, fit, flip_labels, load_params, load_splits


def test_splits_are_disjoint_and_cover_the_data():
    splits = load_splits(seed=7)
    indexes = [set(features.index) for features, _ in splits.values()]
    assert sum(len(index) for index in indexes) == len(set().union(*indexes)) == 569


def test_flip_labels_flips_the_requested_fraction():
    _, labels = load_splits(seed=7)["train"]
    flipped = flip_labels(labels, 0.25, seed=1)
    assert (flipped != labels).sum() == round(0.25 * len(labels))


def test_default_params_train_a_model_that_beats_the_gate():
    params = load_params()
    splits = load_splits(int(params["seed"]))
    model = fit(params, *splits["train"])
    metrics = evaluate(model, *splits["validation"])
    assert metrics["accuracy"] > 0.9
    assert metrics["roc_auc"] > 0.95


def test_label_noise_makes_a_worse_model():
    params = load_params()
    splits = load_splits(int(params["seed"]))
    x_train, y_train = splits["train"]
    clean = evaluate(fit(params, x_train, y_train), *splits["validation"])
    noisy = evaluate(fit(params, x_train, flip_labels(y_train, 0.4, seed=7)), *splits["validation"])
    assert noisy["accuracy"] < clean["accuracy"] - 0.05


def test_the_exported_heldout_set_is_the_heldout_split(tmp_path):
    import pandas as pd

    path = export_heldout(tmp_path / "heldout.csv", tmp_path / "request.json")
    exported = pd.read_csv(path)
    features, labels = load_splits(int(load_params()["seed"]))["heldout"]
    assert list(exported.columns) == [*features.columns, "label"]
    assert exported["label"].tolist() == labels.tolist()
    request = json.loads((tmp_path / "request.json").read_text())["dataframe_split"]
    assert request["columns"] == list(features.columns) and len(request["data"]) == 2
