"""The baseline for `webhook_ingest.py`: a bare Flask app whose webhook endpoint only reads the
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
