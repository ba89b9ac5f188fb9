"""The docs site (mkdocs.yml, docs/) builds with `mkdocs build --strict`, offline, and a broken link fails
that build; the README stays a short front page whose links into docs/ resolve."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


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


def readme_links() -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", README.read_text())


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_links_into_docs_resolve(site):
    """Every relative link in the README (docs/ pages, images) names a file that exists, and a docs page's
    #anchor one that the built page has."""
    links = [link for link in readme_links() if not re.match(r"[a-z]+:", link)]
    assert len([link for link in links if link.startswith("docs/")]) >= 10  # the README points into the docs
    for link in links:
        path, _, anchor = link.partition("#")
        assert (REPO / path).is_file(), f"README links to {path}, which does not exist"
        if anchor and path.endswith(".md"):
            page = Path(path).relative_to("docs").with_suffix("")  # mkdocs' directory URLs
            html = site / (page.parent if page.name == "index" else page) / "index.html"
            assert f'id="{anchor}"' in html.read_text(), f"README links to {link}: no such anchor"


def test_two_commands_match_getting_started():
    """docs/getting-started.md repeats the README's "## Two commands" section word for word (CI runs the
    second command from .ci/run), so the site cannot drift from the front page."""
    section = re.search(r"^## Two commands\n.*?(?=^## )", README.read_text(), re.S | re.M)
    assert section, "README.md lost its '## Two commands' section"
    assert section.group(0).strip() in (REPO / "docs" / "getting-started.md").read_text()
