"""Routing wiring (issue 13): the trained `router` and the `router_report` comparing routing policies."""

from rag_assets.defs.route import assets

ASSETS = [assets.router, assets.router_report]
