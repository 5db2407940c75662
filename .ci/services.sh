#!/usr/bin/env bash
# .ci/services.sh: the database servers of the store/sqlstore tests, and
# the Redis of the redis module's tests.
#
# Sourced by .ci/run (". .ci/services.sh"); running it directly works too,
# but then the exported variables die with it. It:
#   - installs PostgreSQL, MariaDB and Redis with apt-get if their binaries
#     are missing (as root), and lets root reach PostgreSQL and MariaDB on
#     127.0.0.1 without a password, as on the project's machines;
#   - starts each server that does not accept connections, and waits for it
#     (at most KEYGATE_SERVICES_WAIT seconds, default 60), failing loudly;
#   - drops and creates a fresh database keygate_ci in PostgreSQL and
#     MariaDB (Redis is left as it is: its tests use names of their own);
#   - exports KEYGATE_TEST_POSTGRES_DSN, KEYGATE_TEST_MYSQL_DSN and
#     KEYGATE_TEST_REDIS_ADDR.
# It returns (or exits) non-zero on any failure, naming what failed.

_kg_log() { printf '[services] %s\n' "$*" >&2; }
_kg_fail() {
	_kg_log "FAILED: $*"
	return 1
}

# _kg_wait NAME CMD...: runs CMD every half second until it succeeds, at
# most KEYGATE_SERVICES_WAIT seconds.
_kg_wait() {
	local name=$1 i
	shift
	for ((i = 0; i < ${KEYGATE_SERVICES_WAIT:-60} * 2; i++)); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.5
	done
	_kg_fail "$name did not accept connections within ${KEYGATE_SERVICES_WAIT:-60}s"
}

_kg_apt_install() {
	_kg_log "installing $*"
	if [ "$(id -u)" != 0 ]; then
		_kg_fail "must be root to install $*"
		return 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
		_kg_fail "apt-get install $*"
}

_kg_pg_ok() { psql -h 127.0.0.1 -U postgres -d postgres -XAtqc 'SELECT 1' >/dev/null 2>&1; }

_kg_postgres() {
	if ! command -v pg_ctlcluster >/dev/null || ! command -v psql >/dev/null; then
		_kg_apt_install postgresql || return 1
	fi
	local version
	version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
	[ -n "$version" ] || {
		_kg_fail "no PostgreSQL cluster under /etc/postgresql"
		return 1
	}
	if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
		_kg_log "starting PostgreSQL $version"
		pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
			_kg_fail "pg_ctlcluster $version main start" || return 1
	fi
	_kg_wait PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q || return 1
	if ! _kg_pg_ok; then
		# A fresh install asks for a password on TCP: trust postgres on
		# 127.0.0.1, as on the project's machines.
		local hba=/etc/postgresql/$version/main/pg_hba.conf
		_kg_log "letting postgres in from 127.0.0.1 without a password ($hba)"
		sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba" &&
			pg_ctlcluster --skip-systemctl-redirect "$version" main reload ||
			_kg_fail "configure $hba" || return 1
		_kg_wait "PostgreSQL login" _kg_pg_ok || return 1
	fi
	PGOPTIONS='-c client_min_messages=warning' psql -h 127.0.0.1 -U postgres -d postgres -Xq -v ON_ERROR_STOP=1 \
		-c 'DROP DATABASE IF EXISTS keygate_ci WITH (FORCE)' \
		-c 'CREATE DATABASE keygate_ci' ||
		_kg_fail "create PostgreSQL database keygate_ci" || return 1
	export KEYGATE_TEST_POSTGRES_DSN='postgres://postgres@127.0.0.1:5432/keygate_ci?sslmode=disable'
	_kg_log "PostgreSQL ready: database keygate_ci"
}

_kg_my_ok() { mariadb -h 127.0.0.1 -u root -e 'SELECT 1' >/dev/null 2>&1; }
# _kg_my_up: the server answers, even if it refuses root on 127.0.0.1.
_kg_my_up() {
	local out
	out=$(mariadb-admin -h 127.0.0.1 -u root --connect-timeout=2 ping 2>&1) || true
	case $out in *alive* | *"Access denied"*) return 0 ;; esac
	return 1
}

_kg_mariadb() {
	if ! command -v mariadb >/dev/null || [ ! -x /usr/sbin/mariadbd ]; then
		_kg_apt_install mariadb-server || return 1
	fi
	if ! _kg_my_up; then
		_kg_log "starting MariaDB"
		install -d -o mysql -g mysql /run/mysqld &&
			start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql ||
			_kg_fail "start /usr/sbin/mariadbd" || return 1
	fi
	_kg_wait MariaDB _kg_my_up || return 1
	if ! _kg_my_ok; then
		# A fresh install lets root in only through the socket: add
		# root@127.0.0.1 without a password, as on the project's machines.
		_kg_log "letting root in from 127.0.0.1 without a password"
		mariadb -u root -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
			GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION" ||
			_kg_fail "create MariaDB user root@127.0.0.1" || return 1
		_kg_my_ok || _kg_fail "MariaDB login as root on 127.0.0.1" || return 1
	fi
	mariadb -h 127.0.0.1 -u root -e 'DROP DATABASE IF EXISTS keygate_ci;
		CREATE DATABASE keygate_ci CHARACTER SET utf8mb4 COLLATE utf8mb4_bin' ||
		_kg_fail "create MariaDB database keygate_ci" || return 1
	export KEYGATE_TEST_MYSQL_DSN='root@tcp(127.0.0.1:3306)/keygate_ci?parseTime=true'
	_kg_log "MariaDB ready: database keygate_ci"
}

_kg_redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

_kg_redis() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		_kg_apt_install redis-server || return 1
	fi
	if ! _kg_redis_ok; then
		_kg_log "starting Redis"
		install -d /var/lib/redis /var/log/redis &&
			redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
				--dir /var/lib/redis --logfile /var/log/redis/ci.log ||
			_kg_fail "start redis-server" || return 1
	fi
	_kg_wait Redis _kg_redis_ok || return 1
	export KEYGATE_TEST_REDIS_ADDR=127.0.0.1:6379
	_kg_log "Redis ready on 127.0.0.1:6379"
}

_kg_services() { _kg_postgres && _kg_mariadb && _kg_redis; }

_kg_cleanup() {
	unset -f _kg_log _kg_fail _kg_wait _kg_apt_install _kg_pg_ok _kg_postgres \
		_kg_my_ok _kg_my_up _kg_mariadb _kg_redis_ok _kg_redis _kg_services _kg_cleanup
}
# Return when sourced, exit when run.
if _kg_services; then
	_kg_cleanup
	return 0 2>/dev/null || exit 0
else
	_kg_cleanup
	return 1 2>/dev/null || exit 1
fi
