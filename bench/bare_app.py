"""The baseline for the wrk benches: a bare Flask app whose webhook endpoint only reads the
body and answers 200, served by the same gunicorn as the real app. Whatever the real endpoint
costs beyond this (signature check, inbox insert and commit, Redis enqueue) is the app's own.
"""

from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/<platform>")
def receive(platform: str):
    request.get_data(cache=False)
    return jsonify(status="accepted"), 200


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


# The badge API's baseline: a constant body of the same shape and size (one product, 3 variants).
BADGES = {
    "shop": "demo.sandbox.local",
    "enabled": True,
    "variants": {
        str(1000 + i): {
            "state": "backorder",
            "label": "Backorder, ships by Tue, December 15, 2026",
            "eta": "2026-12-15",
            "eta_text": "Tue, December 15, 2026",
            "color": "#9a6700",
        }
        for i in range(3)
    },
}


@app.get("/storefront/v1/badges")
def badges():
    return jsonify(BADGES)
