#!/usr/bin/env bash
# The CLI test checks the zsh completion script with zsh itself. Installs zsh from Debian's packages when it
# is missing (as root, with apt-get, as the other test environments do); otherwise says what to install.
set -euo pipefail
if command -v zsh >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-zsh: the CLI test checks the zsh completion script and needs zsh: install it (apt-get install zsh)" >&2
  exit 1
fi
if ! apt-get install -y -q --no-install-recommends zsh >/tmp/ltp-zsh-apt-install.log 2>&1; then
  apt-get update -q >/tmp/ltp-zsh-apt-update.log 2>&1 || { cat /tmp/ltp-zsh-apt-update.log >&2; echo "ensure-zsh: apt-get update failed" >&2; exit 1; }
  apt-get install -y -q --no-install-recommends zsh >/tmp/ltp-zsh-apt-install.log 2>&1 || {
    tail -30 /tmp/ltp-zsh-apt-install.log >&2; echo "ensure-zsh: apt-get install zsh failed" >&2; exit 1; }
fi
command -v zsh >/dev/null 2>&1 || { echo "ensure-zsh: zsh is still missing after apt-get install" >&2; exit 1; }
