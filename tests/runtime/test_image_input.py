"""Input images from files: decoded by the formats gen names only, and never reinterpreted."""

import numpy as np
import pytest
from PIL import Image

from gen.errors import GenError
from gen.runtime.image_input import as_uint8_nhwc

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n0 0 moveto showpage\n"


@pytest.mark.parametrize("name,write", [
    ("in.png", lambda p: p.write_bytes(EPS)),  # Pillow would hand it to Ghostscript, whatever its suffix
    ("in.ppm", lambda p: Image.new("RGB", (8, 8)).save(p)),  # a format Pillow reads, gen does not promise
])
def test_a_file_in_another_format_is_refused_without_decoding(tmp_path, name, write):
    write(tmp_path / name)
    with pytest.raises(GenError, match=r"image: cannot read .* \(not a PNG, JPEG, WebP, BMP, GIF, TIFF image\)") as e:
        as_uint8_nhwc(str(tmp_path / name))
    assert e.value.argument == "image"


@pytest.mark.parametrize("mode,colour,what", [("LAB", (50, 10, 10), "CIE L\\*a\\*b\\*"), ("CMYK", (0, 0, 0, 255), "CMYK")])
def test_a_lab_or_cmyk_image_is_refused_by_name_not_read_as_rgba(tmp_path, mode, colour, what):
    Image.new(mode, (8, 8), colour).save(tmp_path / "in.tif")
    with pytest.raises(GenError, match=f"image: a {what}.* image \\(mode {mode}\\); .*convert it to RGB"):
        as_uint8_nhwc(str(tmp_path / "in.tif"))


def test_a_palette_gif_with_transparency_keeps_its_alpha_and_an_rgb_tiff_reads_as_rgb(tmp_path):
    Image.new("P", (4, 4), 1).save(tmp_path / "p.gif", transparency=1)
    assert as_uint8_nhwc(str(tmp_path / "p.gif")).shape == (1, 4, 4, 4)
    rgb = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.tif")
    assert np.array_equal(as_uint8_nhwc(str(tmp_path / "in.tif"))[0], rgb)
