"""The packages form a DAG (search -> reports -> spaces -> core) and no library module imports a
command-line module: import-linter's contracts in pyproject.toml, run as CI runs them."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def test_the_layers_hold():
    proc = subprocess.run([LINT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


def test_the_check_can_fail(tmp_path):
    """The same graph against inverted layers is reported broken: the check is not vacuous."""
    config = tmp_path / "inverted.ini"
    config.write_text("[importlinter]\nroot_packages =\n    trilevel.core\n    trilevel.search\n\n"
                      "[importlinter:contract:inverted]\nname = core above search\ntype = layers\n"
                      "layers =\n    trilevel.core\n    trilevel.search\n")
    proc = subprocess.run([LINT, "--config", str(config)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "trilevel.search" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout[-2000:]
