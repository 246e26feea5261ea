from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from plain.packages import PackageConfig, packages_registry, register_config

from .registry import jobs_registry


@register_config
class Config(PackageConfig):
    package_label = "plainworker"

    def ready(self) -> None:
        """Import every installed package's jobs module (and app.jobs) so @register_job runs."""
        names = [f"{config.name}.jobs" for config in packages_registry.get_package_configs()]
        names.append("app.jobs")
        for name in dict.fromkeys(names):
            if _module_exists(name):
                import_module(name)
        jobs_registry.ready = True


def _module_exists(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:
        return False
