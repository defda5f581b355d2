#!/usr/bin/env bash
# The action's install step: ghostguard from the action's own checkout, into a venv of its own,
# put on the job's PATH for the steps that follow.
set -euo pipefail
venv="${RUNNER_TEMP:?}/ghostguard-venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "${GITHUB_ACTION_PATH:?}"
echo "$venv/bin" >> "${GITHUB_PATH:?}"
"$venv/bin/ghostguard" --version
