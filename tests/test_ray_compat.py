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


def test_rays_resume_failure_log_record_raises_inside_and_nothing_else_is_emitted():
    """Ray's TuneController catches a resume error and logs it (then starts afresh); the search
    turns that record into an error. Fails when Ray renames the logger or rewords the message."""
    import logging

    import ray.tune.execution.tune_controller as controller

    source = inspect.getsource(controller)
    assert f'logger.exception("{ray_compat.RESUME_FAILED}.")' in source
    assert controller.logger.name == ray_compat.RESUME_LOGGER
    logger = logging.getLogger(ray_compat.RESUME_LOGGER)
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger.addHandler(handler)
    level, filters = logger.level, list(logger.filters)
    try:
        with ray_compat.resume_failures_raise():
            logger.error("Trial task failed for trial x")  # another record: dropped, nothing raised
            with pytest.raises(ray_compat.RayResumeFailed, match="ModuleNotFoundError: no trilevel.core"):
                try:
                    raise ModuleNotFoundError("no trilevel.core")
                except ModuleNotFoundError:
                    logger.exception("Failed to restore the run state.")
        assert seen == []
        assert logger.level == level and logger.filters == filters  # as it was outside
        logger.setLevel(logging.ERROR)
        logger.error("Failed to restore the run state.")  # outside: an ordinary record again
        assert len(seen) == 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
