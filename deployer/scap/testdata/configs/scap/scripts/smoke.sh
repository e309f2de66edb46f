#!/bin/sh
# Smoke test of the revision being deployed.
exec curl -fsS "http://localhost:8192/_info" >/dev/null
