"""The docs site (mkdocs.yml, docs/) builds with `mkdocs build --strict`, offline, and a broken link fails
that build."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """`python -m mkdocs build --strict` on root's mkdocs.yml (its strict: true says the same)."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(root / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=root, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build(REPO, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_site_builds_strict(site):
    assert (site / "index.html").is_file()
    assert (site / "RESULTS" / "index.html").is_file()  # the reference pages are in it
    assert "search" in (site / "index.html").read_text()  # the built-in theme, with its offline search


def test_broken_link_fails_the_strict_build(tmp_path):
    """The check can fail: a link to a page that does not exist stops the build, naming the file."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "index.md"
    page.write_text(page.read_text() + "\n[x](missing.md)\n")
    result = build(tmp_path, tmp_path / "site")
    assert result.returncode != 0
    assert "missing.md" in result.stdout + result.stderr
