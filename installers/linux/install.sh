#!/usr/bin/env bash
# Installs the Outpost terminal agent as a systemd service. Safe to run again (upgrades).
#
#   install.sh [--binary PATH] [--url URL --token TOKEN [--name NAME] [--force]] [--no-start]
#              [--unit-file PATH] [--destdir DIR]
#
# --binary     the terminal-agent single executable (default: ./terminal-agent beside this
#              script, else the one on PATH)
# --url/--token/--name/--force
#              enroll this machine (as the service user) before starting the service; the
#              token may also come from OUTPOST_ENROLLMENT_TOKEN to keep it out of `ps`
# --no-start   install and enable nothing; leave the service stopped
# --unit-file  the unit to install (default: outpost-agent.service beside this script)
# --destdir    (or DESTDIR=) write everything under this folder and change nothing on the
#              running system: user, ownership and systemctl steps are printed, not run
set -euo pipefail

readonly SERVICE=outpost-agent
readonly SERVICE_USER=outpost-agent
readonly BIN_PATH=/usr/local/bin/terminal-agent
readonly UNIT_PATH=/etc/systemd/system/outpost-agent.service
readonly DATA_DIR=/var/lib/outpost-agent
readonly LOG_DIR=/var/log/outpost-agent

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
binary=""
unit_file="$here/outpost-agent.service"
url=""
token="${OUTPOST_ENROLLMENT_TOKEN:-}"
name=""
force=0
start=1
destdir="${DESTDIR:-}"

die() {
  echo "install.sh: $*" >&2
  exit 1
}

need_value() {
  [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --binary) need_value "$@"; binary="$2"; shift 2 ;;
    --unit-file) need_value "$@"; unit_file="$2"; shift 2 ;;
    --url) need_value "$@"; url="$2"; shift 2 ;;
    --token) need_value "$@"; token="$2"; shift 2 ;;
    --name) need_value "$@"; name="$2"; shift 2 ;;
    --force) force=1; shift ;;
    --no-start) start=0; shift ;;
    --destdir) need_value "$@"; destdir="$2"; shift 2 ;;
    -h | --help) sed -n '2,17p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option $1 (accepted: --binary --url --token --name --force --no-start --unit-file --destdir)" ;;
  esac
done

if [[ -n "$url" && -z "$token" ]] || [[ -z "$url" && -n "$token" ]]; then
  die "--url and --token go together"
fi

if [[ -z "$binary" ]]; then
  if [[ -x "$here/terminal-agent" ]]; then
    binary="$here/terminal-agent"
  elif command -v terminal-agent >/dev/null 2>&1; then
    binary="$(command -v terminal-agent)"
  else
    die "no terminal-agent executable found; pass --binary PATH"
  fi
fi
[[ -f "$binary" ]] || die "--binary $binary is not a file"
[[ -f "$unit_file" ]] || die "unit file $unit_file is missing"

# With a destdir nothing outside it is touched: such steps are printed instead.
dry() {
  if [[ -n "$destdir" ]]; then
    printf 'would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# Runs the installed agent as the service user with the service's data dir.
as_service_user() {
  if command -v runuser >/dev/null 2>&1; then
    runuser -u "$SERVICE_USER" -- env OUTPOST_AGENT_DATA_DIR="$DATA_DIR" "$BIN_PATH" "$@"
  else
    setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --init-groups \
      env OUTPOST_AGENT_DATA_DIR="$DATA_DIR" "$BIN_PATH" "$@"
  fi
}

if [[ -z "$destdir" && "$(id -u)" -ne 0 ]]; then
  die "run as root (or set DESTDIR to stage the files)"
fi

# 1. The service user: a system account without a login shell or a home of its own.
if [[ -n "$destdir" ]] || ! getent passwd "$SERVICE_USER" >/dev/null; then
  nologin="$(command -v nologin || echo /usr/sbin/nologin)"
  dry useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
    --shell "$nologin" --comment "Outpost terminal agent" "$SERVICE_USER"
fi

# 2. Folders. The data dir holds the terminal's credentials: only the service user reads it.
install -d -m 0755 "$destdir/usr/local/bin" "$destdir/etc/systemd/system"
install -d -m 0700 "$destdir$DATA_DIR"
install -d -m 0750 "$destdir$LOG_DIR"
chmod 0700 "$destdir$DATA_DIR"
chmod 0750 "$destdir$LOG_DIR"
dry chown "$SERVICE_USER:$SERVICE_USER" "$destdir$DATA_DIR" "$destdir$LOG_DIR"

# 3. The executable, replaced by a rename so that a running agent never sees a half file.
target="$destdir$BIN_PATH"
if [[ ! "$binary" -ef "$target" ]]; then
  staged="$(mktemp "$target.XXXXXX")"
  trap 'rm -f "$staged"' EXIT
  cp "$binary" "$staged"
  chmod 0755 "$staged"
  mv -f "$staged" "$target"
  trap - EXIT
fi

# 4. The unit.
install -m 0644 "$unit_file" "$destdir$UNIT_PATH"
dry systemctl daemon-reload

# 5. Enrollment, as the service user so that every file it writes is the service's own. The
# token goes to the agent in OUTPOST_ENROLLMENT_TOKEN, never on its command line (`ps`).
enrolled=0
if [[ -n "$url" ]]; then
  args=(enroll --url "$url")
  [[ -n "$name" ]] && args+=(--name "$name")
  [[ $force -eq 1 ]] && args+=(--force)
  # Exported, not given to `env` (whose argv `ps` would show); runuser and setpriv keep it.
  export OUTPOST_ENROLLMENT_TOKEN="$token"
  if [[ -n "$destdir" ]]; then
    # Staged install: enroll with the staged executable into the staged data dir.
    OUTPOST_AGENT_DATA_DIR="$destdir$DATA_DIR" "$target" "${args[@]}"
  else
    as_service_user "${args[@]}"
  fi
  unset OUTPOST_ENROLLMENT_TOKEN
  enrolled=1
fi

# 6. Start. Without an enrollment the agent could only fail, so it is enabled but not started.
if [[ $start -eq 0 ]]; then
  echo "Installed; not started (--no-start)."
elif [[ -n "$destdir" ]]; then
  dry systemctl enable --now "$SERVICE"
  echo "Staged under $destdir; nothing was started."
else
  if [[ $enrolled -eq 0 ]]; then
    # status exits 2 when not enrolled (1 when enrolled but not connected, which is fine here).
    status_rc=0
    as_service_user status >/dev/null 2>&1 || status_rc=$?
    if [[ $status_rc -eq 2 ]]; then
      systemctl enable "$SERVICE"
      echo "Installed and enabled, not started: this machine is not enrolled yet."
      echo "Enroll with: sudo $0 --url URL --token TOKEN"
      exit 0
    fi
  fi
  was_active=0
  systemctl is-active --quiet "$SERVICE" && was_active=1
  systemctl enable --now "$SERVICE"
  # An upgrade replaced the executable under a running agent: restart it onto the new one.
  [[ $was_active -eq 1 ]] && systemctl restart "$SERVICE"
  echo "Installed and started: systemctl status $SERVICE"
fi
