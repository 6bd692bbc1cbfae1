"""The operators' endpoints: readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from ops.metrics import get_metrics
from ops.readiness import get_readiness

bp = Blueprint("ops", __name__)


@bp.get("/readyz")
def readyz():
    """Say whether the store and the model server answer; 503 names what is wrong."""
    report = get_readiness(current_app).report()
    response = jsonify(report.body())
    response.status_code = 200 if report.ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/metrics")
def metrics():
    """Serve every series in the Prometheus text format."""
    body = get_metrics(current_app).exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
