import numpy as np
import pytest
from PIL import Image

from gen.errors import GenError
from gen.trainkit.data import load_dataset


def test_digits_native_size_range_and_disjoint_split(digits):
    assert digits.train_x.shape[1:] == (1, 8, 8) and digits.train_x.dtype == np.float32
    assert len(digits.train_x) + len(digits.test_x) == 1797
    assert 500 <= len(digits.test_x) <= 560
    assert digits.train_x.min() == -1.0 and digits.train_x.max() == 1.0
    assert digits.num_classes == 10 and set(np.unique(digits.test_y)) == set(range(10))
    # held-out images are not in the training split
    train = {x.tobytes() for x in digits.train_x}
    assert sum(x.tobytes() in train for x in digits.test_x) < 0.05 * len(digits.test_x)  # digits has a few exact duplicates


def test_digits_resized():
    d = load_dataset("digits", image_size=16)
    assert d.train_x.shape[1:] == (1, 16, 16)
    assert d.fingerprint() != load_dataset("digits").fingerprint()


def _save(path, size, mode="RGB", color=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


def test_folder_with_class_subfolders_rgb_resize_and_crop(tmp_path):
    for i in range(5):
        _save(tmp_path / "cats" / f"{i}.png", (40, 20), color=(255, 0, 0))
        _save(tmp_path / "dogs" / f"{i}.jpg", (20, 30), color=(0, 0, 255))
    d = load_dataset(str(tmp_path), image_size=16)
    assert d.class_names == ["cats", "dogs"]
    assert d.train_x.shape[1:] == (3, 16, 16)
    all_y = np.concatenate([d.train_y, d.test_y])
    assert sorted(all_y.tolist()) == [0] * 5 + [1] * 5
    red = np.concatenate([d.train_x, d.test_x])[all_y == 0]
    assert np.allclose(red[:, 0], 1.0, atol=0.02) and np.allclose(red[:, 2], -1.0, atol=0.02)


def test_grayscale_folder_without_labels(tmp_path):
    for i in range(4):
        _save(tmp_path / f"{i}.png", (12, 12), mode="L", color=i * 60)
    d = load_dataset(str(tmp_path), image_size=8)
    assert d.channels == 1 and d.num_classes == 0 and (d.train_y == -1).all()


def test_missing_empty_and_unreadable_folders_name_the_path(tmp_path):
    with pytest.raises(GenError, match="not found: .*nope"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenError, match="empty.*holds no images"):
        load_dataset(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(GenError, match="cannot read image .*broken.png"):
        load_dataset(str(bad))
