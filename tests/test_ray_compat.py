"""Ray behaviour the search works around (search/ray_compat.py): these fail when Ray changes it,
so a Ray upgrade shows which workaround to revisit."""

import inspect
from pathlib import Path

import pytest

from trilevel.search import ray_compat


def test_loopback_hook_is_what_ray_init_calls(monkeypatch):
    import ray._private.services as services
    import ray._private.worker as worker

    assert "services.resolve_ip_for_localhost(" in inspect.getsource(worker)  # looked up at call time
    assert '"_node_ip_address"' in inspect.getsource(worker)  # ray.init's private keyword (**kwargs)
    monkeypatch.setattr(services, "resolve_ip_for_localhost", services.resolve_ip_for_localhost)  # undo after
    ray_compat.keep_loopback_local()
    assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"


def test_cluster_address_file_is_rays():
    from ray._common.utils import get_ray_address_file

    assert Path(get_ray_address_file(None)) == ray_compat.RAY_ADDRESS_FILE


def test_quiet_env_keeps_a_users_setting(monkeypatch):
    monkeypatch.setenv("RAY_DEDUP_LOGS", "1")
    for key in ray_compat.QUIET_ENV:
        if key != "RAY_DEDUP_LOGS":
            monkeypatch.delenv(key, raising=False)
    ray_compat.quiet_env()
    import os

    assert os.environ["RAY_DEDUP_LOGS"] == "1"
    assert os.environ["RAY_AUTH_MODE"] == "disabled"


@pytest.mark.parametrize("package, bound", [("ray", "2.61"), ("optuna", "5.1"), ("timm", "1.1")])
def test_pyproject_bounds_the_tested_versions(package, bound):
    """Upper bounds at the versions tested (README: how to bump them)."""
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f"<{bound}" in next(line for line in text.splitlines() if f'"{package}' in line)
