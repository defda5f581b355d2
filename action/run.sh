#!/usr/bin/env bash
# The action's run step: rehearse (or scan) with the inputs, print the chosen format to the log,
# write JSON and SARIF beside it, and set the step's outputs. It always succeeds: the action's
# last step exits with ghostguard's code, after the SARIF upload had its chance.
set -uo pipefail
command="${GHOSTGUARD_COMMAND:-rehearse}"
out="${RUNNER_TEMP:?}/ghostguard"
mkdir -p "$out"
args=(--format "${GHOSTGUARD_FORMAT:-github}" --report "json=$out/result.json" --report "sarif=$out/result.sarif")
case "$command" in
  rehearse)
    args+=(--migrations "${GHOSTGUARD_MIGRATIONS:-supabase/migrations}")
    [ -z "${GHOSTGUARD_SEED:-}" ] || args+=(--seed "$GHOSTGUARD_SEED")
    [ -z "${GHOSTGUARD_ACCEPT_FAILING:-}" ] || args+=(--accept-failing "$GHOSTGUARD_ACCEPT_FAILING")
    ;;
  scan)
    if [ -z "${DATABASE_URL:-}" ]; then
      echo "::error title=ghostguard::scan needs the database-url input (e.g. secrets.DATABASE_URL)"
      { echo "passed=false"; echo "failing="; echo "exit-code=2"; echo "sarif="; } >> "${GITHUB_OUTPUT:?}"
      exit 0
    fi
    ;;
  *)
    echo "::error title=ghostguard::command must be rehearse or scan, not ${command//[$'\r\n']/ }"
    { echo "passed=false"; echo "failing="; echo "exit-code=2"; echo "sarif="; } >> "${GITHUB_OUTPUT:?}"
    exit 0
    ;;
esac
ghostguard "$command" "${args[@]}"
code=$?
python3 - "$out/result.json" "$code" >> "${GITHUB_OUTPUT:?}" <<'PY'
import json, pathlib, sys
path, code = pathlib.Path(sys.argv[1]), int(sys.argv[2])
result = json.loads(path.read_text()) if path.is_file() else {}
if "problems" in result:  # scan: the conditions that hold
    failing = [name for name, holds in result["problems"].items() if holds]
else:  # rehearse: the signup kinds (and sign_in, delete, app_view) that fail
    failing = result.get("failing") or []
print(f"passed={'true' if code == 0 else 'false'}")
print(f"failing={','.join(failing)}")
print(f"exit-code={code}")
PY
sarif="$out/result.sarif"
if [ "$command" = scan ] && [ ! -f ghostguard.toml ]; then
  # Code scanning shows a finding only at a file: a database finding is placed on ghostguard.toml.
  echo "::notice title=ghostguard::no SARIF upload: code scanning shows database findings on ghostguard.toml; commit one (ghostguard init)"
  sarif=""
fi
if [ -n "$sarif" ] && [ -s "$sarif" ]; then echo "sarif=$sarif"; else echo "sarif="; fi >> "$GITHUB_OUTPUT"
exit 0
