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


def materialise_folder(folder):
    from zeroshot_unlearn.data import ImageTensorDataset

    images = [folder[i] for i in range(len(folder))]
    return ImageTensorDataset(torch.stack([x for x, _ in images]), torch.stack([y for _, y in images]))


def _tree(root, folders, size=(40, 40), per_folder=2):
    rng = np.random.default_rng(0)
    for name in folders:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_folder):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_image_folder_tree(tmp_path, digits_model):
    for split in ("train", "test"):
        _tree(tmp_path / split, ["2", "5"], per_folder=3)
    data = load_data(tmp_path, digits_model)  # resized to 28x28 grey, normalised for the digits model
    assert data.train.item_shape == (1, 28, 28) and len(data.train) == 6 and data.test is not None
    assert not hasattr(data.train, "x")  # read from disk as it is used, never held whole
    assert materialise_folder(data.train).x.shape == (6, 1, 28, 28)
    assert data.train.y.tolist() == [2, 2, 2, 5, 5, 5] and data.classes == [str(i) for i in range(10)]
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "missing", digits_model)


def test_retained_only_folders_map_to_the_model_classes_by_name(tmp_path):
    """CIFAR-10 with cat/ and horse/ deleted: deer stays class 4 and truck class 9 (not 3 and 7)."""
    from zeroshot_unlearn import load_model

    model = load_model("cifar10_resnet20")  # the zoo model carries the CIFAR-10 names
    _tree(tmp_path, ["airplane", "deer", "Truck", "2"], size=(32, 32))
    data = load_data(tmp_path, model)
    assert sorted(set(data.train.y.tolist())) == [0, 2, 4, 9]
    assert data.classes[3] == "cat" and data.classes[9] == "truck"
    (tmp_path / "kitten").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "kitten" / "0.png")
    with pytest.raises(DataError, match=r"'kitten' is not one of the model's classes \(0 airplane, 1 automobile"):
        load_data(tmp_path, model)


def test_folders_of_a_model_without_names(tmp_path, digits_model):
    import copy

    model = copy.deepcopy(digits_model)
    del model.pretrained_cfg["label_names"]
    _tree(tmp_path / "partial", ["cat", "dog"])
    with pytest.raises(DataError, match="carries no class names.*class_names="):
        load_data(tmp_path / "partial", model)
    names = [f"c{i}" for i in range(8)] + ["cat", "dog"]
    assert sorted(set(load_data(tmp_path / "partial", model, class_names=names).train.y.tolist())) == [8, 9]
    _tree(tmp_path / "complete", [f"k{i}" for i in range(10)], per_folder=1)  # one folder per class
    assert load_data(tmp_path / "complete", model).train.y.tolist() == list(range(10))
    _tree(tmp_path / "clash", ["3", "03"], per_folder=1)
    with pytest.raises(DataError, match="both map to class 3"):
        load_data(tmp_path / "clash", model)


def test_class_names_are_accepted_where_the_model_has_them():
    from zeroshot_unlearn import InvalidRequestError, load_model
    from zeroshot_unlearn.plan import check_request

    model = load_model("cifar10_resnet20")
    assert check_request(model, ["cat", "horse"]).requested == [3, 7] == check_request(model, [7, "cat"]).requested
    with pytest.raises(InvalidRequestError, match="unknown class name 'kat'.*3 cat"):
        check_request(model, ["kat"])


def test_benchmark_folder_layout_from_the_full_arrays(tmp_path):
    """fetch-data's writer: the layout of the benchmark folder, first N per class in the original order."""
    from zeroshot_unlearn.harness.benchmark_data import write_cifar10_npz

    rng = np.random.default_rng(0)
    train_y = rng.integers(0, 10, 400)
    train_x = rng.integers(0, 255, (400, 32, 32, 3), dtype=np.uint8)
    test_y = rng.integers(0, 10, 50)
    test_x = rng.integers(0, 255, (50, 32, 32, 3), dtype=np.uint8)
    write_cifar10_npz(tmp_path, train_x, train_y, test_x, test_y, per_class=5)
    data = load_data(tmp_path, mean=(0.5,) * 3, std=(0.25,) * 3)
    assert len(data.train) == 50 and torch.bincount(data.train.y).tolist() == [5] * 10
    index = data.train.index.numpy()
    assert (np.diff(index) > 0).all()
    for c in range(10):
        assert index[data.train.y.numpy() == c].tolist() == np.flatnonzero(train_y == c)[:5].tolist()
    assert len(data.test) == 50 and data.classes[3] == "cat"


def test_an_evaluation_folder_of_test_alone_is_a_test_split(tmp_path):
    """A validation set in class folders under test/, with no train/ (issue 45): a test split, and a clear error
    where training images are asked of it."""
    from zeroshot_unlearn import load_model

    model = load_model("tf_efficientnet_lite0")
    for wnid in ("n01440764", "n03888257"):  # tench, parachute
        (tmp_path / "test" / wnid).mkdir(parents=True)
        Image.fromarray(np.zeros((60, 80, 3), dtype=np.uint8)).save(tmp_path / "test" / wnid / "a.JPEG")
    data = load_data(tmp_path, model)
    assert data.train is None and sorted(data.test.y.tolist()) == [0, 701]
    with pytest.raises(DataError, match="holds only a test split.*--eval-data"):
        data.require_train()
