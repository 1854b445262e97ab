#!/usr/bin/env bash
# Runs every check and test of the workspace: the README's test command, and what CI runs.
# The database sink tests need PostgreSQL and MariaDB on 127.0.0.1: they are used when they
# answer, and installed and started here when they do not, as on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then echo "need root to install $*" >&2; return 1; fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_tools() {
  command -v curl >/dev/null || apt_install curl
  command -v cc >/dev/null || apt_install gcc
  command -v systemd-analyze >/dev/null || apt_install systemd
}

ensure_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    return
  fi
  echo "== PostgreSQL is not answering on 127.0.0.1:5432: installing/starting it"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
  local hba=/etc/postgresql/$ver/main/pg_hba.conf
  # Tests connect as postgres over TCP without a password: trust loopback only.
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  for _ in $(seq 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
}

ensure_mariadb() {
  if mysql -h 127.0.0.1 -u root -e 'select 1' >/dev/null 2>&1; then
    return
  fi
  echo "== MariaDB is not answering on 127.0.0.1:3306: installing/starting it"
  command -v mariadbd >/dev/null || apt_install mariadb-server mariadb-client
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 30); do mysqladmin ping --silent 2>/dev/null && break; sleep 1; done
  # Tests connect as root over TCP with no password, as the project's machines do.
  mysql -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); FLUSH PRIVILEGES;" || true
}

ensure_promtool() {
  # promtool lints the metrics and alert rules; Debian's prometheus package ships it, and
  # unpacking it (without installing) starts no server.
  if command -v promtool >/dev/null; then export PROMTOOL=$(command -v promtool); return; fi
  local dir=target/tools
  if [ ! -x "$dir/usr/bin/promtool" ]; then
    mkdir -p "$dir"
    if [ -z "${APT_UPDATED:-}" ] && ! (cd "$dir" && apt-get download prometheus >/dev/null 2>&1); then
      apt-get update -qq; APT_UPDATED=1
    fi
    (cd "$dir" && ls prometheus_*.deb >/dev/null 2>&1 || apt-get download prometheus >/dev/null 2>&1)
    dpkg -x "$(ls "$dir"/prometheus_*.deb | head -1)" "$dir"
  fi
  export PROMTOOL=$PWD/$dir/usr/bin/promtool
}

ensure_tools
ensure_promtool
ensure_postgres
ensure_mariadb

echo "== format"
cargo fmt --all -- --check
echo "== lint"
cargo clippy --workspace --all-targets -- -D warnings
echo "== tests"
cargo test --workspace
