from __future__ import annotations

import os

from plain.packages import PackageConfig, register_config

from . import SPANS_FILE_ENV, install


@register_config
class Config(PackageConfig):
    package_label = "tracing"

    def ready(self) -> None:
        if path := os.environ.get(SPANS_FILE_ENV):
            install(path)
