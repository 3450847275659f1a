"""The import layers of the package, checked from the source with `ast`: every module of saeh/ and baselines/ (and
the three top-level scripts) imports only modules of its own layer or a lower one, and no files import each other in
a circle. The layers are written down once, here, in LAYERS; the same checker is shown to report a planted circle
and a planted breach.

Every import counts, at any depth (inside a function too), and `importlib.import_module("literal")`; an import under
`if __name__ == "__main__":` does not: that code runs only when the file is run as a script, never when it is
imported. Importing a submodule is not counted as importing its package's `__init__` (which only hands names on).
"""

import ast
import fnmatch
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("saeh", "baselines")
SCRIPTS = ("hash_su_ae_train.py", "generate_hash.py", "evaluate.py")

# From the top down: a module may import modules of its own layer and of the layers below it. A module matches the
# first pattern (fnmatch) that names it; a module that none names fails the check, so that a new file is placed.
LAYERS = (
    # The package's names (lazy) and training from Python, which runs the training script's code path.
    ("python api", ("saeh", "saeh.api.train")),
    ("scripts", ("hash_su_ae_train", "generate_hash", "evaluate", "saeh.pretrained")),
    # The runner drives the training script's command line, one cell at a time.
    ("runner", ("saeh.reproduce", "saeh.reproduce.*", "saeh.reproduce_*", "saeh.results_figures")),
    ("command line", ("saeh.cli", "saeh.cli.*", "baselines.__main__", "saeh.serve", "saeh.serve.*")),
    # A trained model and a saved index, as the Python API and the search commands use them.
    ("models in use", ("saeh.api", "saeh.api.*")),
    ("training", ("saeh.training", "saeh.training.*", "saeh.training_*")),
    # A method's hooks get what they need from the loop (TrainingContext), never by importing it.
    ("methods", ("saeh.methods", "baselines", "baselines.*")),
    ("library", ("saeh.models", "saeh.models.*", "saeh.losses", "saeh.data", "saeh.data.*", "saeh.retrieval",
                 "saeh.retrieval.*", "saeh.inference", "saeh.codes", "saeh.presets", "saeh.recipes",
                 "saeh.optimizers", "saeh.distributed", "saeh.dumps", "saeh.run_codes", "saeh.run_data",
                 "saeh.pairs", "saeh.user_images")),
    # The registry finds the method packages through their entry points: it imports none of them.
    ("utilities", ("saeh.defaults", "saeh.errors", "saeh.atomic", "saeh.registry", "saeh.published",
                   "saeh.run_folder", "saeh.run_record", "saeh.method_state", "saeh.validation",
                   "saeh.shipped", "saeh.cpu_cost", "saeh.peers", "saeh.progress")),
)


# ---------------------------------------------------------------------------------------------------- the checker

def module_files(root, packages, scripts=()):
    """{module name: file path} of every .py file under `root`/<package> and of the `scripts` in `root`."""
    files = {os.path.splitext(script)[0]: os.path.join(root, script) for script in scripts}
    for package in packages:
        for folder, _, names in os.walk(os.path.join(root, package)):
            parts = os.path.relpath(folder, root).split(os.sep)
            for name in names:
                if name.endswith(".py"):
                    stem = name[:-3]
                    files[".".join(parts if stem == "__init__" else [*parts, stem])] = os.path.join(folder, name)
    return files


def _is_main_guard(node):
    """`if __name__ == "__main__":`"""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _imported_names(tree, module, is_package):
    """For each import in the code of `tree` outside `__main__` guards, the dotted names it may mean, most specific
    first (`from X import Y`: X.Y, a module, else X)."""
    guarded = {id(node) for top in tree.body if _is_main_guard(top) for node in ast.walk(top)}
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield (alias.name,)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", base
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield (node.args[0].value,)


def _resolve(candidates, known):
    """The first of `candidates` (dotted names, most specific first) that is a module of `known`, or its longest
    known prefix; None for a module outside the packages."""
    for name in candidates:
        if name in known:
            return name
    parts = candidates[-1].split(".")
    for end in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def import_graph(root, packages, scripts=()):
    """{module: set of the modules of `packages` (and `scripts`) that it imports}."""
    files = module_files(root, packages, scripts)
    graph = {}
    for module, path in files.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        found = (_resolve(candidates, files)
                 for candidates in _imported_names(tree, module, path.endswith("__init__.py")))
        graph[module] = {name for name in found if name is not None and name != module}
    return graph


def layer_of(module, layers):
    """The index (0 = top) of the first layer with a pattern matching `module`; None when none does."""
    for index, (_, patterns) in enumerate(layers):
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return index
    return None


def unplaced_modules(graph, layers):
    return sorted(module for module in graph if layer_of(module, layers) is None)


def layer_breaches(graph, layers):
    """["A (layer) imports B (higher layer)", ...] for every import of a module of a higher layer."""
    breaches = []
    for module in sorted(graph):
        own = layer_of(module, layers)
        for imported in sorted(graph[module]):
            other = layer_of(imported, layers)
            if own is not None and other is not None and other < own:
                breaches.append(f"{module} ({layers[own][0]}) imports {imported} ({layers[other][0]})")
    return breaches


def import_cycles(graph):
    """The groups of modules that import each other in a circle (the strongly connected components of more than one
    module, by Tarjan's algorithm), each as a sorted list."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(groups)


def shortest_circle(group, graph):
    """The shortest closed path of imports from the group's first module back to it: [first, ..., first]."""
    start, paths = group[0], [[group[0]]]
    while paths:  # breadth first
        path = paths.pop(0)
        for imported in sorted(graph[path[-1]] & set(group)):
            if imported == start:
                return [*path, start]
            if imported not in path:
                paths.append([*path, imported])
    raise ValueError(f"{group} is no circle")


def describe(graph, layers):
    """Every problem of `graph` under `layers`, one line each; empty when it is clean."""
    return ([f"no layer for {module}: add it to LAYERS" for module in unplaced_modules(graph, layers)]
            + layer_breaches(graph, layers)
            + [f"circle of {', '.join(group)}: " + " -> ".join(shortest_circle(group, graph))
               for group in import_cycles(graph)])


# ------------------------------------------------------------------------------------------------------ the tests

def test_the_package_imports_downwards_only_and_in_no_circle():
    graph = import_graph(REPO, PACKAGES, SCRIPTS)
    assert {"saeh.registry", "saeh.training", "baselines.shc", "baselines.__main__", "evaluate"} <= set(graph)
    problems = describe(graph, LAYERS)
    assert not problems, "\n".join(problems)


def write_package(root, files):
    """Write {relative path: source} under `root`, with an empty __init__.py in each folder."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        init = path.parent / "__init__.py"
        if not init.exists():
            init.write_text("")


def test_a_planted_circle_is_reported_with_its_files(tmp_path):
    write_package(tmp_path, {
        "fake/a.py": "import fake.b\n",
        "fake/b.py": "def late():\n    from fake import c, d\n",  # inside a function: still imports
        "fake/c.py": "from .a import thing\n",  # relative: fake.a
        "fake/d.py": "import fake.a\nimport os\n",
        "fake/e.py": "import fake.a\n",  # imports the circle without being in it
    })
    graph = import_graph(tmp_path, ("fake",))
    assert graph["fake.b"] == {"fake.c", "fake.d"} and graph["fake.c"] == {"fake.a"} and graph["fake.d"] == {"fake.a"}
    assert import_cycles(graph) == [["fake.a", "fake.b", "fake.c", "fake.d"]]
    layers = (("all", ("fake", "fake.*")),)
    assert describe(graph, layers) == ["circle of fake.a, fake.b, fake.c, fake.d: fake.a -> fake.b -> fake.c -> fake.a"]


def test_a_planted_layer_breach_is_reported(tmp_path):
    write_package(tmp_path, {
        "fake/high.py": "import fake.low\n",
        "fake/low.py": ("import importlib\n\n\ndef load():\n    return importlib.import_module('fake.high')\n\n\n"
                        "if __name__ == '__main__':\n    import fake.top\n"),  # a script's own code: not counted
        "fake/top.py": "import fake.high\n",
        "fake/stray.py": "",
    })
    graph = import_graph(tmp_path, ("fake",))
    assert graph["fake.low"] == {"fake.high"}
    layers = (("top", ("fake.top",)), ("high", ("fake.high",)), ("low", ("fake", "fake.low")))
    assert describe(graph, layers) == [
        "no layer for fake.stray: add it to LAYERS",
        "fake.low (low) imports fake.high (high)",
        "circle of fake.high, fake.low: fake.high -> fake.low -> fake.high",
    ]
