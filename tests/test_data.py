import numpy as np
import pytest
import torch
from PIL import Image

from zeroshot_unlearn import DataError, InvalidRequestError
from zeroshot_unlearn.data import load_data, retained_subset


def test_shared_npz_layout(shared_data):
    from zeroshot_unlearn import load_model

    model = load_model("cifar10_resnet20")
    data = load_data(shared_data, model)
    assert data.train.x.shape == (10000, 3, 32, 32) and data.test.x.shape == (10000, 3, 32, 32)
    assert data.classes[3] == "cat" and torch.bincount(data.test.y).tolist() == [1000] * 10
    assert data.train.index is not None and bool((data.train.index[1:] > data.train.index[:-1]).all())


def test_retained_subset_is_balanced_and_never_holds_forget_classes(digits):
    subset = retained_subset(digits.train, [3, 7], 2500 // 6, seed=0)
    counts = torch.bincount(subset.y, minlength=10)
    assert counts[3] == 0 and counts[7] == 0
    assert len(set(counts[[0, 1, 2, 4, 5, 6, 8, 9]].tolist())) == 1
    again = retained_subset(digits.train, [3, 7], 2500 // 6, seed=0)
    assert torch.equal(subset.index, again.index)
    fraction = retained_subset(digits.train, [3], 0.05, seed=0)
    assert abs(len(fraction) - 400) < 10
    with pytest.raises(InvalidRequestError):
        retained_subset(digits.train, [3], 0)


def test_image_folder_tree(tmp_path, digits_model):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    data = load_data(tmp_path, digits_model)  # resized to 28x28 grey, normalised for the digits model
    assert data.train.x.shape == (6, 1, 28, 28) and data.test is not None and data.classes == ["a", "b"]
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "missing", digits_model)
