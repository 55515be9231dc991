#!/bin/sh
# Container entrypoint of the terminal agent.
#
# On the first start (the data volume not enrolled yet) it enrolls with OUTPOST_CONTROL_PLANE_URL
# and OUTPOST_ENROLLMENT_TOKEN (and OUTPOST_TERMINAL_NAME, if set), then runs the agent in the
# foreground. Later starts find the enrollment in the volume and just run. Arguments, when
# given, are a terminal-agent command instead (`docker run IMAGE status --json`).
set -eu

OUTPOST_AGENT_DATA_DIR="${OUTPOST_AGENT_DATA_DIR:-/var/lib/outpost-agent}"
export OUTPOST_AGENT_DATA_DIR

if [ "$#" -gt 0 ]; then
  exec terminal-agent "$@"
fi

# status exits 2 when the data dir is not enrolled (0 or 1 are connected or not: enrolled).
status=0
terminal-agent status >/dev/null 2>&1 || status=$?

if [ "$status" -eq 2 ]; then
  if [ -z "${OUTPOST_CONTROL_PLANE_URL:-}" ] || [ -z "${OUTPOST_ENROLLMENT_TOKEN:-}" ]; then
    echo "entrypoint: $OUTPOST_AGENT_DATA_DIR is not enrolled; set OUTPOST_CONTROL_PLANE_URL" \
      "and OUTPOST_ENROLLMENT_TOKEN for the first start" >&2
    exit 2
  fi
  # The token stays in OUTPOST_ENROLLMENT_TOKEN, where enroll reads it: not in argv, so not in
  # `ps` output of the container or its host.
  set -- enroll --url "$OUTPOST_CONTROL_PLANE_URL"
  if [ -n "${OUTPOST_TERMINAL_NAME:-}" ]; then
    set -- "$@" --name "$OUTPOST_TERMINAL_NAME"
  fi
  echo "entrypoint: enrolling with $OUTPOST_CONTROL_PLANE_URL" >&2
  terminal-agent "$@"
  set --
fi

# The token is spent; keep it out of the long-running agent's environment.
unset OUTPOST_ENROLLMENT_TOKEN
exec terminal-agent run
