"""Array arguments of generate() (labels, image, mask) that are ragged or nested: a GenError naming the
argument, in process and on the way to a server, never numpy's ValueError or a silent flattening."""

import io

import pytest

from gen.errors import GenError, shown
from gen.runtime.arguments import ARGUMENTS, class_labels
from gen.runtime.image_input import as_uint8_nhwc


@pytest.mark.parametrize("labels,message", [
    ([[1, 2], [3]], r"labels must be one integer or a flat list of integers \(one per image\), got \[\[1, 2\], \[3\]\]"),
    ([[1, 2], [3, 4]], r"labels must be one integer or a flat list of integers \(one per image\), got shape \[2, 2\]"),
    (io.BytesIO(b"1"), r"labels must be integers, got a BytesIO$"),
])
def test_ragged_or_nested_labels_are_named(labels, message):
    with pytest.raises(GenError, match=message) as e:
        class_labels(labels, 2, 10)
    assert e.value.argument == "labels"
    with pytest.raises(GenError, match="labels must be integers") as e:  # a served request: not flattened to 4 labels
        ARGUMENTS["labels"].encode(labels)
    assert e.value.argument == "labels"


@pytest.mark.parametrize("name", ["image", "mask"])
def test_a_ragged_image_is_named(name):
    with pytest.raises(GenError, match=rf"{name} must be a path, a PIL image or a numpy array \(or a list of them\), got int") as e:
        as_uint8_nhwc([[1, 2], [3]], name)
    assert e.value.argument == name


def test_messages_show_what_a_value_is_not_its_address():
    assert shown(io.BytesIO()) == "a BytesIO" and shown([1, 2]) == "[1, 2]" and shown("x" * 200).endswith("...")
    with pytest.raises(GenError, match=r"steps must be an integer, at least 1, got an object") as e:
        ARGUMENTS["steps"].check(object())
    assert "0x" not in str(e.value)


def test_a_bundle_that_is_no_path_is_named():
    from gen.runtime.sampler import Sampler

    with pytest.raises(GenError, match=r"bundle must be the path of a bundle directory .*, got a BytesIO$"):
        Sampler(io.BytesIO(b"x"))
