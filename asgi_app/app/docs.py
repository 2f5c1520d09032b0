"""/rt/docs: Swagger UI from files this service serves itself, so the page renders offline
and under the site's CSP (`script-src 'self'; style-src 'self'`): no CDN, no inline script.

The Swagger UI files come from the `fastapi-offline` package (it vendors a current
swagger-ui-dist); only its static directory is used. The setup script is a file too.
"""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/rt/docs"

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}} - Swagger UI</title>
<link rel="icon" href="{PREFIX}/assets/favicon.png">
<link rel="stylesheet" href="{PREFIX}/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{PREFIX}/assets/swagger-ui-bundle.js"></script>
<script src="{PREFIX}/swagger-init.js"></script>
</body>
</html>
"""

INIT = """window.ui = SwaggerUIBundle({
  url: "%s",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


def install(app: FastAPI) -> None:
    """Serve the page, its setup script and Swagger UI's files under /rt/docs."""
    page = PAGE.replace("{title}", app.title)
    init = INIT % app.openapi_url

    @app.get(PREFIX, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(f"{PREFIX}/swagger-init.js", include_in_schema=False)
    async def docs_init() -> Response:
        return Response(init, media_type="text/javascript")

    app.mount(f"{PREFIX}/assets", StaticFiles(directory=ASSETS), name="docs-assets")
