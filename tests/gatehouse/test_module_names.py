"""One meaning per name: no two modules of the apps share a name, except the ones Django and the
house style give every app (``models``, ``views``, ``services`` …), and no module imports itself
back through a cycle (the ``acyclic_modules`` contract in ``pyproject.toml`` says the same at
``make lint``)."""

from __future__ import annotations

from collections import defaultdict

import grimp

from tests.support.import_contracts import module_cycles
from tests.support.processes import REPO_ROOT

APPS = ("gatehouse", "core", "audit", "tokens", "upstreams", "gateway", "api")
# Names every app may have: Django's, the house style's, and the package folders Django expects.
CONVENTIONAL = frozenset({
    "models", "views", "urls", "forms", "admin", "apps", "services", "selectors", "tasks",
    "exceptions", "serializers", "errors", "asgi", "management", "commands", "templatetags",
})


def module_names() -> dict[str, list[str]]:
    """Each module name (a package by its folder's name) and the files that carry it."""
    names: dict[str, list[str]] = defaultdict(list)
    for app in APPS:
        for path in sorted((REPO_ROOT / app).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT)
            if "migrations" in relative.parts:
                continue
            name = path.parent.name if path.stem == "__init__" else path.stem
            if path.stem == "__init__" and path.parent.name == app:
                continue  # the app itself
            names[name].append(str(relative))
    return names


def test_module_names_are_unique_across_the_apps():
    twice = {name: paths for name, paths in module_names().items()
             if len(paths) > 1 and name not in CONVENTIONAL}
    assert not twice, f"module names with more than one home (rename the less central one): {twice}"


def test_the_check_reads_every_app():
    homes = {path.split("/")[0] for paths in module_names().values() for path in paths}
    assert homes == set(APPS)
    assert "gateway/admission/credentials.py" in module_names()["credentials"]


def test_no_import_cycles_between_modules():
    graph = grimp.build_graph(*APPS, include_external_packages=False)
    assert not module_cycles(graph, graph.modules)
