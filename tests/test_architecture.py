"""The layers' arrows point one way, nothing branches on a family's name outside the family modules,
and importing gen changes nothing in the process.

Every import counts, the lazy ones inside functions too: a deployment host that runs only
gen.runtime must never reach the training stack, whichever code path it takes.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

GEN = Path(__file__).resolve().parents[1] / "gen"

# package -> packages it must never import (with the one module allowed, where there is one)
FORBIDDEN = {
    "gen.runtime": ("gen.trainkit", "gen.export", "gen.recipes", "gen.serving", "gen.cli", "gen.optimize"),
    "gen.nets": ("gen.recipes", "gen.trainkit", "gen.export", "gen.serving", "gen.cli", "gen.optimize"),
    "gen.serving": ("gen.trainkit", "gen.export", "gen.recipes", "gen.cli", "gen.optimize"),
    "gen.recipes": ("gen.trainkit", "gen.export", "gen.serving", "gen.cli", "gen.optimize"),  # trainkit imports recipes
    "gen.trainkit": ("gen.export", "gen.serving", "gen.cli", "gen.optimize"),  # export reads runs: no circle
    "gen.export": ("gen.trainkit", "gen.serving", "gen.cli", "gen.optimize"),
    "gen.optimize": ("gen.serving", "gen.cli"),  # composes trainkit, export and runtime; the CLI calls it
}
ALLOWED = {("gen.export", "gen.trainkit.rundir")}  # export reads a run directory, not training code
SHARED = ("gen.errors", "gen.fileio", "gen.images", "gen.versions", "gen.hf", "gen.cache", "gen.outputs",
          "gen.plugins")  # below every layer


def module_name(path: Path) -> str:
    rel = path.relative_to(GEN.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports_of(source: str, module: str = "", is_package: bool = False) -> list[str]:
    """Every gen module `source` (the module `module`) imports, at any depth (functions included);
    relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[:len(package) - (node.level - 1)] + ([node.module] if node.module else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names]
    return [m for m in found if m == "gen" or m.startswith("gen.")]


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    out = []
    for imported in imports_of(source, module, is_package):
        for layer, banned in FORBIDDEN.items():
            if module != layer and not module.startswith(layer + "."):
                continue
            for b in banned:
                hit = imported == b or imported.startswith(b + ".")
                if hit and not any(module.startswith(lay) and imported.startswith(ok) for lay, ok in ALLOWED):
                    out.append(f"{module} imports {imported} ({layer} must not import {b})")
        if module in SHARED and imported != "gen" and not any(imported == s or imported.startswith(s + ".") for s in SHARED):
            out.append(f"{module} imports {imported} (shared modules import only each other)")
    return out


def gen_modules():
    return sorted((module_name(p), p) for p in GEN.rglob("*.py"))


def test_no_module_imports_against_the_arrows():
    problems = [v for name, path in gen_modules() for v in violations(name, path.read_text(), path.name == "__init__.py")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module,source", [
    ("gen.runtime.sampler", "def f():\n    from gen.trainkit.train import train\n"),
    ("gen.runtime.backends.eager", "import gen.export.onnx_io\n"),
    ("gen.nets.families.sd", "from gen.recipes import registry\n"),
    ("gen.recipes.registry", "def f():\n    from gen.trainkit.sd.lora import add_lora\n"),
    ("gen.export.onnx_export", "from gen.trainkit.families.ddpm import noise_scheduler\n"),
    ("gen.serving.repository", "from gen.export.onnx_io import file_entry\n"),
    ("gen.fileio", "from gen.runtime.bundle import load_bundle\n"),
    ("gen.runtime.sampler", "def f():\n    from ..trainkit import train\n"),
    ("gen.nets.families.gan", "from ...export.onnx_io import file_entry\n"),
])
def test_a_forbidden_import_is_caught(module, source):
    assert violations(module, source), f"{module}: {source!r} should be refused"


def test_allowed_imports_pass():
    assert not violations("gen.export.onnx_export", "from gen.trainkit.rundir import RunDir\nimport gen.runtime.bundle\n")
    assert not violations("gen.runtime.backends.eager", "from gen.nets.families import get_nets\n")


def module_imports(module: str, source: str, is_package: bool, modules) -> set[str]:
    """The gen modules among `modules` that `source` (the module `module`) imports, at any depth: `from
    gen.x import y` is gen.x.y when that is a module, else gen.x; relative imports are resolved."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            for a in node.names:
                if f"{base}.{a.name}" in modules:
                    found.add(f"{base}.{a.name}")
                elif base in modules:
                    found.add(base)
    return found - {module}


def circles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The import circles of `graph` (module -> modules it imports): its strongly connected components of
    more than one module (Tarjan's algorithm), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> (source, is_package) as module -> the modules it imports."""
    return {m: module_imports(m, src, pkg, sources) for m, (src, pkg) in sources.items()}


def gen_sources() -> dict[str, tuple[str, bool]]:
    return {name: (path.read_text(), path.name == "__init__.py") for name, path in gen_modules()}


PENDING_CIRCLES: set = set()  # issue 33 broke the last ones; a new circle is fixed, not listed here


def test_no_import_circles():
    """Every arrow between gen's modules points one way, counting the imports inside functions too: a lazy
    import keeps `gen --help` fast, it does not make a circle acceptable."""
    found = set(circles(import_graph(gen_sources())))
    assert not found - PENDING_CIRCLES, "import circles:\n" + "\n".join(" <-> ".join(c) for c in sorted(found - PENDING_CIRCLES))
    assert not PENDING_CIRCLES - found, f"no longer circles, strike them from PENDING_CIRCLES: {sorted(PENDING_CIRCLES - found)}"


@pytest.mark.parametrize("sources,circle", [
    ({"gen.export.a": ("from gen.export.b import f\n", False), "gen.export.b": ("def g():\n    from gen.export.a import h\n", False)},
     ("gen.export.a", "gen.export.b")),
    ({"gen.x": ("", True), "gen.x.a": ("from . import b\n", False), "gen.x.b": ("from .c import f\n", False),
      "gen.x.c": ("import gen.x.a\n", False)},
     ("gen.x.a", "gen.x.b", "gen.x.c")),
    ({"gen.p": ("def f():\n    from gen.p.q import g\n", True), "gen.p.q": ("from gen import p\n", False), "gen": ("", True)},
     ("gen.p", "gen.p.q")),
])
def test_a_planted_circle_is_caught(sources, circle):
    assert circle in circles(import_graph(sources))


def test_one_way_arrows_are_no_circle():
    sources = {"gen.a": ("import gen.b\n", False), "gen.b": ("def f():\n    from gen import c\n", False), "gen.c": ("", False)}
    assert circles(import_graph(sources)) == []


# the families' names, runtime and training side (a Stable Diffusion adaptation's run is a family of its own)
def _registered_families() -> set[str]:
    from gen.runtime.families import family_names

    return set(family_names())


# every registered family (a new plug-in is covered without an edit here) and the training-only names
FAMILY_NAMES = tuple(sorted(_registered_families() | {"sd", "sd-lora", "lcm-lora", "textual-inversion", "dreambooth"}))
# where a name that is spelt like a family is not one: the --model recipes are named in their own registry
NOT_FAMILIES = {"gen/recipes/registry.py": "the recipe names of `gen export --model` (sd, sd-lora, tiny-sd)",
                "gen/errors.py": "with_article: 'an sd' is English (ess-dee), not a branch on the family"}
PENDING_FAMILY_BRANCHES: set = set()  # (file, the line's text); issue 33 removed the last ones


def _families_in(node) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if node.value in FAMILY_NAMES else []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [f for e in node.elts for f in _families_in(e)]
    return []


def family_branches(source: str) -> list[int]:
    """The lines of `source` that branch on a family's name or list families by hand: `== "gan"` or
    `"gan" !=` either way round, `in ("ddpm", "gan")`, `.startswith("sd")`, `case "vae":`, a dict keyed by
    two or more family names, and a tuple, list or set of two or more."""
    lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for i, op in enumerate(node.ops):
                if isinstance(op, (ast.Eq, ast.NotEq)) and (_families_in(sides[i]) or _families_in(sides[i + 1])):
                    lines.add(node.lineno)
                if isinstance(op, (ast.In, ast.NotIn)) and _families_in(sides[i + 1]):
                    lines.add(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "endswith") and node.args and _families_in(node.args[0]):
            lines.add(node.lineno)
        elif isinstance(node, ast.MatchValue) and _families_in(node.value):
            lines.add(node.lineno)
        elif isinstance(node, ast.Dict) and sum(len(_families_in(k)) for k in node.keys if k is not None) >= 2:
            lines.add(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" \
                and sum(kw.arg in FAMILY_NAMES for kw in node.keywords) >= 2:
            lines.add(node.lineno)
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(_families_in(node)) >= 2:
            lines.add(node.lineno)
    return sorted(lines)


def test_no_family_name_branches_outside_the_family_modules():
    """Family plug-ins (gen/*/families/<name>.py) are the only place a family is named in code; a registry
    (gen/*/families/__init__.py) finds them, it does not list them."""
    found = set()
    for name, path in gen_modules():
        rel = path.relative_to(GEN.parent).as_posix()
        if ".families." in name or rel in NOT_FAMILIES:
            continue
        text = path.read_text()
        lines = text.splitlines()
        found |= {(rel, lines[i - 1].strip()) for i in family_branches(text)}
    assert not found - PENDING_FAMILY_BRANCHES, "\n".join(f"{f}: {t}" for f, t in sorted(found - PENDING_FAMILY_BRANCHES))
    assert not PENDING_FAMILY_BRANCHES - found, f"gone, strike them from PENDING_FAMILY_BRANCHES: {sorted(PENDING_FAMILY_BRANCHES - found)}"


@pytest.mark.parametrize("source", [
    'if family == "gan":\n    pass\n',
    'if "ddpm" == manifest.family:\n    pass\n',
    'ok = spec.name != "sd"\n',
    'guided = config["family"] in ("ddpm", "gan")\n',
    'plain = kind not in ["vae"]\n',
    'if name.startswith("stylegan"):\n    pass\n',
    'if name.endswith(("ae", "vae")):\n    pass\n',
    'HELP = {"gan": "a GAN", "ddpm": "a DDPM"}\n',
    'HELP = dict(gan=1, vae=2)\n',
    'FAMILIES = ("gan", "vae", "ddpm")\n',
    'match family:\n    case "cyclegan":\n        pass\n',
    'EXPORTS = {"sd-lora": 1, "dreambooth": 2}\n',
])
def test_a_planted_family_branch_is_caught(source):
    assert family_branches(source), source


@pytest.mark.parametrize("source", [
    'if family == spec.name:\n    pass\n',
    'modules = {"vqvae": vqvae, "prior": prior}\n',
    'train_with(out, "ddpm", fresh)\n',
    'if precision == "fp16":\n    pass\n',
])
def test_family_free_code_passes(source):
    assert family_branches(source) == []


LONGEST = 80  # lines of one function, decorators and signature aside
PENDING_LONG: set = set()  # (file, function); issue 33 split the last ones


def long_functions(source: str, limit: int = LONGEST) -> list[tuple[str, int]]:
    """(qualified name, lines) of each function of `source` longer than `limit` lines."""
    out = []

    def walk(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > limit:
                    out.append((name, child.end_lineno - child.lineno + 1))
                walk(child, name + ".")
            else:
                walk(child, prefix)

    walk(ast.parse(source), "")
    return out


def test_no_function_is_over_80_lines():
    found = {(path.relative_to(GEN.parent).as_posix(), name): lines for _, path in gen_modules()
             for name, lines in long_functions(path.read_text())}
    over = {k: v for k, v in found.items() if k not in PENDING_LONG}
    assert not over, "\n".join(f"{f} {name}: {n} lines (split it along its seams)" for (f, name), n in sorted(over.items()))
    assert not PENDING_LONG - set(found), f"short now, strike them from PENDING_LONG: {sorted(PENDING_LONG - set(found))}"


def test_a_planted_long_function_is_caught():
    source = "class C:\n    def f(self):\n" + "        x = 1\n" * 90
    assert long_functions(source) == [("C.f", 91)]
    assert long_functions("def g():\n" + "    x = 1\n" * 79) == []


def test_importing_gen_changes_nothing_in_the_process():
    """No environment variables, umask, thread counts or other libraries' log levels set at import."""
    code = r"""
import importlib, logging, os, pkgutil, sys
import torch
before = (dict(os.environ), torch.get_num_threads(), sorted((n, l.level) for n, l in logging.root.manager.loggerDict.items() if isinstance(l, logging.Logger)))
umask_before = open('/proc/self/status').read().split('Umask:')[1].split()[0]
import gen
for m in pkgutil.walk_packages(gen.__path__, 'gen.'):
    if m.name == 'gen.serving.triton_models' or m.name.endswith('__main__'):
        continue  # Triton's stub only; running the CLI
    importlib.import_module(m.name)
after = (dict(os.environ), torch.get_num_threads(), sorted((n, l.level) for n, l in logging.root.manager.loggerDict.items() if isinstance(l, logging.Logger) and n in dict(before[2])))
umask_after = open('/proc/self/status').read().split('Umask:')[1].split()[0]
changed_env = {k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k)}
levels = dict(before[2]); changed_levels = {n for n, l in after[2] if levels.get(n) != l}
print(sorted(changed_env), before[1] == after[1], umask_before == umask_after, sorted(changed_levels))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "GEN_HF_LOGS")}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split("\n")[-2] == "[] True True []", p.stdout


def test_the_sampler_is_importable_where_the_readme_says():
    import gen
    from gen.runtime import Sampler
    from gen.runtime.sampler import Sampler as Defined

    assert Sampler is Defined is gen.Sampler


# The Sampler and the demo hold a source (gen.runtime.sources) and ask it; where a model runs, here
# or on a server, is never tested for there. Only open_models, which turns `gen demo --url` into a
# model, may test for a URL.
NO_REMOTE_BRANCHES = [GEN / "runtime" / "sampler.py", *sorted((GEN / "demo").glob("*.py"))]
SERVED_CLASSES = ("RemoteGenerator", "ServedSource")
LOCATION_NAMES = ("remote", "url")  # names that tell where a model runs
KIND_NAMES = ("bundle", "backend", "limits", "client")  # `s.bundle is None`: a remote test in disguise
URL_ALLOWED_IN = ("open_models",)


def _names(node) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
           {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def remote_branches(source: str) -> list[str]:
    """Where `source` tells a served model from a local one: `.remote`, the served classes (imported,
    named, isinstance), gen.runtime.remote imported, and conditions on a URL, on "triton"/"remote",
    or on a bundle, backend, limits or client being None."""
    tree = ast.parse(source)
    for parent in ast.walk(tree):  # each node learns its function, for URL_ALLOWED_IN
        for child in ast.iter_child_nodes(parent):
            child.function = parent.name if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)) else \
                getattr(parent, "function", None)
    found = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr == "remote" or isinstance(node, ast.Name) and node.id == "remote":
            found.append(f"{where}: `remote`")
        elif isinstance(node, ast.Name) and node.id in SERVED_CLASSES:
            found.append(f"{where}: {node.id}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            imported = modules + [a.name for a in node.names]
            if any(m == "gen.runtime.remote" for m in modules) or any(n in SERVED_CLASSES for n in imported):
                found.append(f"{where}: imports {', '.join(imported)}")
        tests = [node.test] if isinstance(node, (ast.If, ast.IfExp, ast.While, ast.Assert)) else \
            [c for g in node.generators for c in g.ifs] if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp,
                                                                            ast.GeneratorExp)) else []
        for test in tests:
            names = _names(test)
            if names & set(LOCATION_NAMES) and (getattr(node, "function", None) not in URL_ALLOWED_IN or "remote" in names):
                found.append(f"{where}: a condition on {', '.join(sorted(names & set(LOCATION_NAMES)))}")
            if any(isinstance(c, ast.Constant) and c.value in ("triton", "remote") for c in ast.walk(test)):
                found.append(f"{where}: a condition on 'triton'/'remote'")
            for cmp in (c for c in ast.walk(test) if isinstance(c, ast.Compare)):
                none = any(isinstance(o, ast.Constant) and o.value is None for o in cmp.comparators)
                if none and _names(cmp.left) & set(KIND_NAMES):
                    found.append(f"{where}: a condition on {', '.join(sorted(_names(cmp.left) & set(KIND_NAMES)))} being None")
    return found


def test_the_sampler_and_the_demo_have_no_remote_branches():
    """A served model is one source among others (gen.runtime.sources): issue 33."""
    problems = [f"{path.relative_to(GEN.parent)} {hit}" for path in NO_REMOTE_BRANCHES for hit in remote_branches(path.read_text())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", [
    "def f(s):\n    if s.remote is not None:\n        return 1\n",
    "def f(s, step):\n    remote = s.sampler.remote\n    return {} if remote else {'on_step': step}\n",
    "def f(s):\n    return s.sampler().remote.client\n",
    "def f(s):\n    return 1 if isinstance(s.source, ServedSource) else 2\n",
    "def f(s):\n    from gen.runtime.remote import RemoteGenerator\n    return RemoteGenerator\n",
    "import gen.runtime.remote\n",
    "def check(models, name):\n    if models[name].url:\n        raise ValueError\n",
    "def f(url):\n    while url:\n        url = None\n",
    "def describe(s):\n    return s.backend.describe() if s.bundle is not None else None\n",
    "def f(s):\n    assert s.limits is None\n",
    "def f(backend):\n    if backend == 'triton':\n        pass\n",
    "def f(s):\n    return [a for a in s.arguments if s.family != 'remote']\n",
    "def open_models(s):\n    if s.remote:\n        pass\n",  # open_models may test a URL, not `remote`
])
def test_a_planted_remote_branch_is_caught(source):
    assert remote_branches(source), f"{source!r} should be caught"


def test_constructing_by_url_and_asking_the_source_pass():
    assert not remote_branches(
        "def open_models(url, model):\n    if url:\n        return Sampler(url, backend='triton', model=model)\n"
        "def run(sampler, step):\n    return {'on_step': step} if sampler.source.takes_on_step else {}\n"
        "def check(models, name):\n    if not models[name].precisions:\n        raise ValueError\n")
