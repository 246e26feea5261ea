from typing import ClassVar

from plain.urls import Router


class AppRouter(Router):
    namespace = ""
    urls: ClassVar[list] = []
