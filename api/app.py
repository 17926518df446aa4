"""FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import admin_api, admin_pages, errors, modeler, pages, supervision_pages, workspace, workspace_api
from api.limits import RequestBodyLimit
from api.routes import admin, audit, auth, cases, definitions, diagrams, exports, overlays, publication, replay, tasks
from api.routes import calendar as working_calendar
from api.routes import controls as control_overrides
from api.routes import register as risk_register
from api.routes import statistics as supervision_statistics
from api.routes import supervision as supervision_board
from api.routes import users as user_administration
from api.routes import versions as definition_versions
from engine.definitions import prepare_schema_validation
from engine.service import Liuhen
from engine.settings import Settings

logger = logging.getLogger(__name__)

def _install_docs(app: FastAPI) -> None:
    """Serve Swagger UI from the installed swagger-ui-bundle, so /docs works on networks without Internet."""
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="liuhen 留痕 API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def create_app(settings: Settings | None = None, service: Liuhen | None = None) -> FastAPI:
    settings = settings or (service.settings if service else Settings())
    owned = service is None
    liuhen = service or Liuhen(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        liuhen.db.check_migrated()
        # Before any request thread parses a flowchart; see engine.definitions.
        prepare_schema_validation()
        logger.info("liuhen API ready", extra={"database": liuhen.db.engine.url.render_as_string(hide_password=True)})
        yield
        if owned:
            liuhen.db.dispose()

    app = FastAPI(
        title="liuhen 留痕",
        version="0.1.0",
        description="BPMN engine for power-operation flowcharts with integrity-risk checkpoints and a "
                    "hash-chained trace. Sign in at POST /api/auth/login and send the token as a Bearer header.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=errors.DATABASE_UNAVAILABLE_RESPONSES,
    )
    app.state.liuhen = liuhen
    _install_docs(app)
    errors.install(app)
    for router in (auth.router, definitions.router, cases.router, tasks.router, admin.router, publication.router,
                   exports.router, audit.router, replay.router, diagrams.router, overlays.router,
                   risk_register.router, working_calendar.router, supervision_statistics.router,
                   supervision_board.router, control_overrides.router, definition_versions.router,
                   user_administration.router, pages.router,
                   workspace.router, workspace_api.router, supervision_pages.router, admin_pages.router,
                   admin_api.router, modeler.page_router,
                   modeler.drafts_router):
        app.include_router(router)

    @app.get("/api/health", tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness check; also confirms the database schema is current."""
        liuhen.db.check_migrated()
        return {"status": "ok"}

    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(RequestBodyLimit, api=app, settings=settings)
    return app
