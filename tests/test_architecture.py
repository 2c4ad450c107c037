"""The layer order of README's "Design" section, checked by reading every module's imports with ``ast``.

No TensorFlow is needed: the source is parsed, never imported. A module may import what stands in a
lower layer, or its own package; never a higher layer, never another package of its own layer, and
never another module's private (``_name``) member.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"keras_fool": ROOT / "keras_fool", "keras_fool.zoo": ROOT / "zoo", "keras_fool.cli": ROOT / "cli"}

# Lowest first; a unit is a module or package directly under keras_fool.
LAYERS = (
    ("keras_fool", "errors", "lazy"),
    ("validation", "io", "class_names"),
    ("data", "summaries", "distribute"),
    ("run_folder",),  # the one output-folder policy: io and summaries below it, every run above
    ("schedules", "encodings", "defenses"),
    ("zoo",),
    ("target",),  # the model contract: resolves preset names through zoo
    ("backends",),  # deployed models (TFLite, ONNX, SavedModel, HTTP) behind the contract
    ("attacks", "detectors"),  # attacks and out-of-distribution detectors take a target
    ("evolution",),
    ("evaluation",),
    ("training",),
    ("report",),  # presentation: figures, tables, paper numbers, titles; renders what evaluation computes
    ("experiments", "human_study", "audit"),
    ("cli",),
    ("__main__",),
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _modules():
    """{dotted module name: source path} of every module of the package."""
    found = {}
    for prefix, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([prefix, *parts])
            if prefix == "keras_fool" and parts and parts[0] in ("zoo", "cli"):
                continue  # never a folder of its own, but guard against one appearing
            found[name] = path
    return found


MODULES = _modules()


def _where(module):
    path = MODULES[module]
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _unit(module):
    """The layer unit of a dotted keras_fool module name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "keras_fool"


def _resolve(module, node):
    """The absolute module an ``ImportFrom`` node names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module):
    """[(imported module, member or None, line)] of every keras_fool import in ``module``, at any depth."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names if alias.name.startswith("keras_fool")]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if not source.startswith("keras_fool"):
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((submodule, None, node.lineno) if submodule in MODULES else (source, alias.name,
                                                                                            node.lineno))
    return found


def test_every_module_is_in_a_layer():
    units = {_unit(m) for m in MODULES}
    assert units <= set(LAYER_OF), f"modules outside the layer table: {sorted(units - set(LAYER_OF))}"


def test_the_target_contract_stands_under_its_users():
    # keras_fool.target sits on zoo and under everything that scores images through it.
    assert "keras_fool.target" in MODULES
    assert LAYER_OF["zoo"] < LAYER_OF["target"] < LAYER_OF["attacks"] < LAYER_OF["evolution"]
    users = {"attacks", "evolution", "evaluation", "training", "experiments", "human_study", "audit"}
    wrong = [f"{_where(module)}:{line} imports {imported}" for module in MODULES if _unit(module) == "target"
             for imported, _, line in _imports(module) if _unit(imported) in users]
    assert not wrong, "the target imports what uses it:\n" + "\n".join(wrong)


def test_imports_only_go_down_the_layers():
    wrong = []
    for module in MODULES:
        own = _unit(module)
        for imported, _, line in _imports(module):
            other = _unit(imported)
            if other == own or other == "keras_fool":
                continue
            if LAYER_OF[other] >= LAYER_OF[own]:
                wrong.append(f"{_where(module)}:{line} ({own}, layer {LAYER_OF[own]}) imports "
                             f"{imported} ({other}, layer {LAYER_OF[other]})")
    assert not wrong, "imports that go up or sideways:\n" + "\n".join(wrong)


def test_no_cycle_between_packages():
    edges = {unit: set() for unit in LAYER_OF}
    for module in MODULES:
        for imported, _, _ in _imports(module):
            if _unit(imported) != _unit(module):
                edges[_unit(module)].add(_unit(imported))
    edges["keras_fool"].clear()  # the package's lazy __init__ imports nothing at import time
    visiting, done, cycles = set(), set(), []

    def visit(unit, path):
        if unit in visiting:
            cycles.append(path[path.index(unit):] + [unit])
            return
        if unit in done:
            return
        visiting.add(unit)
        for nxt in sorted(edges[unit]):
            visit(nxt, path + [unit])
        visiting.discard(unit)
        done.add(unit)

    for unit in sorted(edges):
        visit(unit, [])
    assert not cycles, f"import cycles between packages: {cycles}"


def test_no_module_imports_another_modules_private_names():
    wrong = []
    for module in MODULES:
        tree = ast.parse(MODULES[module].read_text())
        imported_modules = {}
        for imported, member, line in _imports(module):
            if member is not None and member.startswith("_") and imported != module:
                wrong.append(f"{_where(module)}:{line} imports {imported}.{member}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    imported_modules[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in MODULES:
                        imported_modules[alias.asname or alias.name] = f"{source}.{alias.name}"
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__") and imported_modules[node.value.id].startswith("keras_fool")):
                wrong.append(f"{_where(module)}:{node.lineno} uses "
                             f"{imported_modules[node.value.id]}.{node.attr}")
    assert not wrong, "private names used across modules:\n" + "\n".join(wrong)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    # A module that goes up the layers and reaches into a private name must be reported.
    bad = tmp_path / "bad.py"
    bad.write_text("from keras_fool.experiments.report import _hidden\nimport keras_fool.cli\n")
    monkeypatch.setitem(MODULES, "keras_fool.attacks_probe", bad)
    monkeypatch.setitem(LAYER_OF, "attacks_probe", LAYER_OF["attacks"])
    found = _imports("keras_fool.attacks_probe")
    assert ("keras_fool.experiments.report", "_hidden", 1) in found
    with pytest.raises(AssertionError, match="attacks_probe"):
        test_imports_only_go_down_the_layers()
    with pytest.raises(AssertionError, match="_hidden"):
        test_no_module_imports_another_modules_private_names()


def _tree():
    """[(command path, click command)] of every command and group of the CLI, read without TensorFlow."""
    from keras_fool.cli import main

    import click

    found = []

    def walk(command, path):
        found.append((path, command))
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), path + [name])

    walk(main, [])
    return found


def _commands():
    """Every command path of the CLI."""
    return [path for path, _ in _tree()]


def test_every_help_and_usage_error_is_answered_without_tensorflow(tmp_path):
    held = tmp_path / "held"
    held.mkdir()
    (held / "checkpoint.npz").write_bytes(b"")
    code = f"""
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from keras_fool.cli import main
import click

def walk(command, path, out):
    out.append(path)
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            walk(command.get_command(ctx, name), path + [name], out)
    return out

paths = walk(main, [], [])
for path in paths:
    try:
        main(path + ["--help"], standalone_mode=False)
    except SystemExit as e:
        assert e.code in (0, None), (path, e.code)
usage_errors = [
    ["evolve", "--population", "0"],
    ["evolve", "--encoding", "nope"],
    ["evolve", "--model", "alexnet"],
    ["evolve", "--out", {str(held)!r}],
    ["evolve", "--model", {str(tmp_path / "gone.keras")!r}],
    ["zoo", "show", "alexnet"],
    ["zoo", "train", "alexnet"],
    ["zoo", "eval", "alexnet"],
    ["experiment", "transfer", "--runs", "0"],
    ["experiment", "robustness", "--levels", "1"],
    ["render", "--scale", "0", "x.npz"],
]
for args in usage_errors:
    try:
        main(args)
    except SystemExit as e:
        assert e.code == 2, (args, e.code)
    else:
        raise AssertionError(args)
print("commands", len(paths), "TF" if "tensorflow" in sys.modules and sys.modules["tensorflow"] else "no TF")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1].split()
    assert last[0] == "commands" and last[-2:] == ["no", "TF"], last
    assert int(last[1]) >= 12  # the group, evolve, render, zoo and its 4, experiment and its 4


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "keras_fool", "--version"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "keras-fool, version" in result.stdout


def _groups():
    """[(command path, click.Group)] of every group of the CLI."""
    import click

    return [(path, command) for path, command in _tree() if isinstance(command, click.Group)]


def check_command_registries(groups):
    """Every lazy command resolves to a Click command of its registered name; no name registered twice."""
    import click

    wrong = []
    for path, group in groups:
        where = " ".join(["keras-fool", *path])
        lazy = getattr(group, "lazy_commands", {})
        for name in sorted(set(lazy) & set(group.commands)):
            wrong.append(f"{where} {name}: registered both lazily and directly")
        for name, spec in sorted(lazy.items()):
            command = group.get_command(click.Context(group), name)
            if not isinstance(command, click.Command):
                wrong.append(f"{where} {name}: {spec} is not a Click command")
            elif command.name != name:
                wrong.append(f"{where} {name}: {spec} is the command named {command.name!r}")
    return wrong


def duplicate_dict_keys(path):
    """Keys written twice in one dict literal of ``path`` (Python keeps the last one, silently)."""
    found = []
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            found += [f"{Path(path).name}:{node.lineno}: {k!r}" for k in sorted(set(keys)) if keys.count(k) > 1]
    return found


def test_every_lazy_command_resolves_to_a_command_of_its_name():
    groups = _groups()
    assert {" ".join(path) for path, _ in groups} >= {"", "experiment", "zoo", "human-study"}
    assert not check_command_registries(groups), "\n".join(check_command_registries(groups))
    duplicates = [d for path in sorted(SOURCES["keras_fool.cli"].glob("*.py")) for d in duplicate_dict_keys(path)]
    assert not duplicates, f"command names registered twice: {duplicates}"


def test_every_command_module_in_cli_is_reachable():
    import click

    reached = set()
    for _, group in _groups():
        reached.add(group.callback.__module__)
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            reached.add(group.get_command(ctx, name).callback.__module__)
    modules = {f"keras_fool.cli.{p.stem}" for p in SOURCES["keras_fool.cli"].glob("*.py")
               if p.stem not in ("__init__", "__main__", "options")}
    assert modules - reached == set(), f"modules in cli/ with no command the CLI reaches: {sorted(modules - reached)}"


def test_the_registry_checks_fail_on_a_wrong_or_duplicate_name(tmp_path):
    from keras_fool.cli import LazyGroup

    import click

    wrong_name = LazyGroup("probe", lazy_commands={"evolve": "keras_fool.cli.render:render"})
    assert "is the command named 'render'" in "".join(check_command_registries([(["probe"], wrong_name)]))
    twice = LazyGroup("probe", lazy_commands={"render": "keras_fool.cli.render:render"})
    twice.add_command(click.Command("render"))
    assert "registered both" in "".join(check_command_registries([(["probe"], twice)]))
    source = tmp_path / "registry.py"
    source.write_text('_COMMANDS = {"render": "a:b", "zoo": "c:d", "render": "e:f"}\n')
    assert duplicate_dict_keys(source) == ["registry.py:1: 'render'"]
