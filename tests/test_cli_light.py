"""The command-line tools answer --help and --version without loading torch, timm, Ray or Optuna."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "timm", "ray", "optuna", "rich", "matplotlib")


@pytest.mark.parametrize("module, parser", [
    ("trilevel.core.cli", "build_parser"),
    ("trilevel.search.cli", "build_parser"),
    ("trilevel.reports.cli", "_parser"),
])
@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(module, parser, flag):
    code = (
        "import contextlib, io, sys\n"
        f"import {module} as m\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        m.{parser}().parse_args([{flag!r}])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "assert out.getvalue().strip(), 'nothing printed'\n"
        f"print(sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_version_names_the_installed_release(capsys):
    from trilevel.search.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.startswith("trilevel-search ")


def test_lazy_package_exports_still_resolve():
    import trilevel.core as core
    import trilevel.reports as reports
    import trilevel.search as search

    assert callable(core.train) and callable(core.sparsify) and core.ExamplePruner.__name__ == "ExamplePruner"
    assert callable(search.run_search) and search.SAMPLERS[0] == "tpe"
    assert callable(reports.write_outputs) and callable(reports.load_run)
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        core.nonexistent  # noqa: B018
