from plain.admin.urls import AdminRouter
from plain.assets.urls import AssetsRouter
from plain.auth.views import LogoutView
from plain.urls import Router, include, path

from .web import WebRouter


class AdminAppRouter(Router):
    namespace = ""
    urls = [
        include("admin/", AdminRouter),
        include("assets/", AssetsRouter),
        path("logout/", LogoutView, name="logout"),
        *WebRouter.urls,
    ]
