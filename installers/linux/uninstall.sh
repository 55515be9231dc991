#!/usr/bin/env bash
# Removes the Outpost terminal agent service. Safe to run again.
#
#   uninstall.sh [--purge] [--destdir DIR]
#
# Keeps the data dir (the terminal's enrollment and credentials), the logs and the service user
# unless --purge is given. --destdir (or DESTDIR=) works under that folder only and prints the
# systemctl and userdel steps instead of running them.
set -euo pipefail

readonly SERVICE=outpost-agent
readonly SERVICE_USER=outpost-agent
readonly BIN_PATH=/usr/local/bin/terminal-agent
readonly UNIT_PATH=/etc/systemd/system/outpost-agent.service
readonly DATA_DIR=/var/lib/outpost-agent
readonly LOG_DIR=/var/log/outpost-agent

purge=0
destdir="${DESTDIR:-}"

die() {
  echo "uninstall.sh: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --purge) purge=1; shift ;;
    --destdir) [[ $# -ge 2 && -n "$2" ]] || die "--destdir needs a value"; destdir="$2"; shift 2 ;;
    -h | --help) sed -n '2,8p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option $1 (accepted: --purge --destdir)" ;;
  esac
done

dry() {
  if [[ -n "$destdir" ]]; then
    printf 'would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

if [[ -z "$destdir" && "$(id -u)" -ne 0 ]]; then
  die "run as root (or set DESTDIR)"
fi

# Stop first, so that the agent finishes its running jobs before its files go away.
if [[ -n "$destdir" || -f "$UNIT_PATH" ]]; then
  dry systemctl disable --now "$SERVICE" || true
fi

rm -f "$destdir$UNIT_PATH" "$destdir$BIN_PATH"
dry systemctl daemon-reload
dry systemctl reset-failed "$SERVICE" 2>/dev/null || true

if [[ $purge -eq 1 ]]; then
  rm -rf "$destdir$DATA_DIR" "$destdir$LOG_DIR"
  if [[ -n "$destdir" ]] || getent passwd "$SERVICE_USER" >/dev/null; then
    dry userdel "$SERVICE_USER"
  fi
  echo "Removed the service, its data and its user."
else
  echo "Removed the service; kept $destdir$DATA_DIR (remove it with --purge)."
fi
