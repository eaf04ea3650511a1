"""Health check: the process is up and the flow is loaded."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok", flow="calm_line.flow" in current_app.extensions)
