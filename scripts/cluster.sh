#!/usr/bin/env bash
# cluster.sh up|down|status|crash|promote|nginx-kill|sql: a small deployment of several machines
# on this one, each machine a network namespace on a private subnet this script makes (a bridge
# and veth pairs; no other address is ever contacted). As root (namespaces need it).
#
#   10.77.0.1   this machine's end of the subnet (clients, tests)
#   10.77.0.2   crm-front  nginx balancing the two application hosts (nginx/crm-balancer.conf.in)
#   10.77.0.11  crm-pg1    PostgreSQL primary
#   10.77.0.12  crm-pg2    PostgreSQL streaming standby (physical replication, synchronous)
#   10.77.0.21  crm-app1   application host: the FastCGI pools, crm-events, crm-mailer,
#   10.77.0.22  crm-app2     crm-webhooks and nginx, from `make install`'s layout and units
#   10.77.0.30  crm-mail   an SMTP server that keeps what it receives (scripts/smtp-capture.py)
#
# The hosts connect with a libpq multi-host URL (both servers, target_session_attrs=read-write),
# so after a failover they find the new primary by themselves. State: $CRM_CLUSTER_DIR
# (/var/lib/crm-cluster). README "Several hosts" explains the deployment and the failover.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=${CRM_CLUSTER_DIR:-/var/lib/crm-cluster}
NET=10.77.0
BR=crm-cl0
HOSTS=(front pg1 pg2 app1 app2 mail)
declare -A ADDR=([front]=2 [pg1]=11 [pg2]=12 [app1]=21 [app2]=22 [mail]=30)
# Extra addresses of this machine's end, so a test can be several clients (the hosts' rate
# limits count per client address).
CLIENTS=$(seq 101 110)
UNITS=(crm-auth crm-login crm-leads crm-dashboard crm-events crm-mailer crm-webhooks)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
RUNAS=(setpriv --reuid=crm --regid=crm --init-groups --)

trap 'printf "cluster: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR
say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: %s\n' "$*" >&2; exit 1; }
in_ns() { local h=$1; shift; ip netns exec "crm-$h" "$@"; }
as_crm() { local h=$1; shift; in_ns "$h" "${RUNAS[@]}" "$@"; }
secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# --- the network ---------------------------------------------------------------------------------

net_up() {
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    for c in $CLIENTS; do ip addr add "$NET.$c/24" dev "$BR"; done
    ip link set "$BR" up
    for h in "${HOSTS[@]}"; do
        ip netns add "crm-$h"
        ip link add "cl-$h" type veth peer name eth0 netns "crm-$h"
        ip link set "cl-$h" master "$BR" up
        in_ns "$h" ip addr add "$NET.${ADDR[$h]}/24" dev eth0
        in_ns "$h" ip link set eth0 up
        in_ns "$h" ip link set lo up
    done
}

net_down() {
    for h in "${HOSTS[@]}"; do
        ip netns del "crm-$h" 2>/dev/null || true
        # Gone with its namespace, unless a process still holds that: then by name.
        ip link del "cl-$h" 2>/dev/null || true
    done
    ip link del "$BR" 2>/dev/null || true
}

# --- PostgreSQL ----------------------------------------------------------------------------------

pg_start() {
    local h=$1
    as_crm "$h" "$PGBIN/pg_ctl" -D "$S/$h/data" -l "$S/$h/postgresql.log" -w -t 60 \
        -o "-c listen_addresses=$NET.${ADDR[$h]} -k $S/$h" start >/dev/null ||
        die "PostgreSQL on $h did not start: see $S/$h/postgresql.log"
}

psql_on() {
    local h=$1
    shift
    as_crm "$h" "$PGBIN/psql" -X -v ON_ERROR_STOP=1 -h "$S/$h" -d "${DB:-crm}" -qtA "$@"
}

primary_up() {
    mkdir -p "$S/pg1"
    chown crm:crm "$S/pg1"
    as_crm pg1 "$PGBIN/initdb" -D "$S/pg1/data" -U crm --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$S/pg1/initdb.log"
    cat >>"$S/pg1/data/pg_hba.conf" <<HBA
host crm         crm  $NET.0/24 scram-sha-256
host replication repl $NET.0/24 scram-sha-256
HBA
    pg_start pg1
    DB=postgres psql_on pg1 -c "ALTER ROLE crm PASSWORD '$DB_PASSWORD'" \
        -c "CREATE ROLE repl REPLICATION LOGIN PASSWORD '$REPL_PASSWORD'" -c "CREATE DATABASE crm"
}

# The standby: a copy of the primary (pg_basebackup), then streaming. The primary waits for it
# at each commit (synchronous_standby_names), so a 201 means the row is on both servers. The
# standby does not ask the same of a standby of its own: promoted, it goes on alone (README
# "Failover").
standby_up() {
    mkdir -p "$S/pg2"
    chown crm:crm "$S/pg2"
    (umask 077; printf '%s:5432:*:repl:%s\n' "$NET.11" "$REPL_PASSWORD" >"$S/pg2/pgpass")
    chown crm:crm "$S/pg2/pgpass"
    as_crm pg2 env PGPASSFILE="$S/pg2/pgpass" "$PGBIN/pg_basebackup" -h "$NET.11" -U repl \
        -D "$S/pg2/data" -X stream -R --checkpoint=fast >"$S/pg2/basebackup.log" 2>&1
    echo "primary_conninfo = 'host=$NET.11 user=repl passfile=$S/pg2/pgpass application_name=pg2'" \
        >>"$S/pg2/data/postgresql.auto.conf"
    pg_start pg2
    for _ in $(seq 100); do
        [ "$(DB=postgres psql_on pg1 -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] && break
        sleep 0.1
    done
    DB=postgres psql_on pg1 -c "ALTER SYSTEM SET synchronous_standby_names = '*'" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

# --- the application hosts -----------------------------------------------------------------------

# Host $1 as `make install` lays it out, under $S/$1 instead of /usr and /etc.
app_install() {
    local h=$1 d=$S/$1
    make -s -C "$ROOT" install PREFIX="$d/usr" SYSCONFDIR="$d/etc" RUNDIR="$d/run" LISTEN=80 \
        ACCESS_LOG="$d/log/nginx-access.log" >"$S/$h-install.log"
    mkdir -p "$d"/{run,log,mail,nginx}
    # The settings file the operator writes: the same database and JWT secret on every host.
    cat >"$d/etc/crm/crm.env" <<ENV
DATABASE_URL=postgresql://crm:$DB_PASSWORD@$NET.11:5432,$NET.12:5432/crm?target_session_attrs=read-write&connect_timeout=2
JWT_SECRET=$JWT_SECRET
BCRYPT_COST=10
PORT=80
MAIL_HOST=$NET.30
MAIL_PORT=25
MAIL_TLS=off
MAIL_RETRY_SECONDS=5
MAIL_FROM=Next-Gen CRM <no-reply@crm.test>
MAIL_DIR=$d/mail
METRICS_ALLOW=127.0.0.0/8 $NET.0/24
TRUSTED_PROXIES=$NET.2
PUBLIC_URL=http://$NET.2
ENV
    chmod 0640 "$d/etc/crm/crm.env"
    chown -R crm:crm "$d"/{run,log,mail,nginx} "$d/etc/crm"
    as_crm "$h" env CRM_ENV_FILE="$d/etc/crm/crm.env" "$d/usr/bin/crmctl" nginx-settings \
        >"$d/etc/nginx/snippets/crm-settings.conf"
    # What Debian's /etc/nginx/nginx.conf is to the installed site.
    cat >"$d/nginx/nginx.conf" <<CONF
user crm crm;
worker_processes 1;
pid $d/run/nginx.pid;
error_log $d/log/nginx-error.log warn;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $d/nginx/body;
    fastcgi_temp_path $d/nginx/fastcgi;
    proxy_temp_path $d/nginx/proxy;
    uwsgi_temp_path $d/nginx/uwsgi;
    scgi_temp_path $d/nginx/scgi;
    server_tokens off;
    sendfile on;
    include $d/etc/nginx/sites-available/crm.conf;
}
CONF
}

# Starts unit $2 on host $1 as systemd would: its Environment=, ExecStartPre=, LimitNOFILE= and
# ExecStart= lines, as user crm, in the host's namespace.
unit_start() {
    local h=$1 u=$2 f=$S/$1/usr/lib/systemd/system/$2.service env pre exec nofile
    env=$(sed -n 's/^Environment=//p' "$f")
    pre=$(sed -n 's/^ExecStartPre=-\{0,1\}//p' "$f")
    exec=$(sed -n 's/^ExecStart=//p' "$f")
    nofile=$(sed -n 's/^LimitNOFILE=//p' "$f")
    [ -z "$pre" ] || sh -c "$pre"
    # shellcheck disable=SC2086 # Environment= is a list of words
    in_ns "$h" env $env setsid sh -c "ulimit -n ${nofile:-1024}; exec ${RUNAS[*]} $exec" \
        </dev/null >>"$S/$h/log/$u.log" 2>&1 &
    echo $! >"$S/$h/run/$u.pid"
}

app_start() {
    local h=$1 u
    for u in "${UNITS[@]}"; do unit_start "$h" "$u"; done
    for u in "${UNITS[@]}"; do
        case $u in crm-mailer | crm-webhooks) continue ;; esac
        for _ in $(seq 100); do [ -S "$S/$h/run/$u.sock" ] && break; sleep 0.1; done
        [ -S "$S/$h/run/$u.sock" ] || die "$u on $h did not start: see $S/$h/log/$u.log"
    done
    nginx_start "$h"
}

nginx_start() {
    in_ns "$1" nginx -p "$S/$1/nginx" -c "$S/$1/nginx/nginx.conf" ||
        die "nginx on $1 did not start: see $S/$1/log/nginx-error.log"
}

front_up() {
    local d=$S/front servers=""
    mkdir -p "$d"
    for h in app1 app2; do
        servers+="    server $NET.${ADDR[$h]}:80 max_fails=1 fail_timeout=5s;"$'\n'
    done
    sed -e "s|@LISTEN@|$NET.2:80|" -e "s|@ACCESS_LOG@|$d/access.log|" \
        -e "/^@SERVERS@$/{r /dev/stdin" -e 'd}' "$ROOT/nginx/crm-balancer.conf.in" \
        >"$d/crm-balancer.conf" <<<"${servers%$'\n'}"
    cat >"$d/nginx.conf" <<CONF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server_tokens off;
    include $d/crm-balancer.conf;
}
CONF
    in_ns front nginx -p "$d" -c "$d/nginx.conf" || die "front nginx did not start: see $d/error.log"
}

mail_up() {
    mkdir -p "$S/mail/inbox"
    in_ns mail setsid /usr/bin/python3 "$ROOT/scripts/smtp-capture.py" "$NET.30" 25 \
        "$S/mail/inbox" </dev/null >>"$S/mail/smtp.log" 2>&1 &
    echo $! >"$S/mail/smtp.pid"
    for _ in $(seq 50); do
        in_ns mail bash -c "exec 3<>/dev/tcp/$NET.30/25" 2>/dev/null && return 0
        sleep 0.1
    done
    die "the SMTP capture server did not start: see $S/mail/smtp.log"
}

# Host $1's nginx, master and workers, killed at once (as when its machine fails); returns when
# they are gone, their listening socket with them.
nginx_kill() {
    local p pids=()
    for p in $(ip netns pids "crm-$1"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" != nginx ] || pids+=("$p")
    done
    kill -9 "${pids[@]}"
    for _ in $(seq 100); do
        # Gone, or a zombie: either way its descriptors are closed.
        for p in "${pids[@]}"; do
            case $(sed -n 's/^State:\s*\(.\).*/\1/p' "/proc/$p/status" 2>/dev/null) in
            "" | Z) ;;
            *) sleep 0.05; continue 2 ;;
            esac
        done
        return 0
    done
    die "nginx on $1 did not die"
}

# --- commands ------------------------------------------------------------------------------------

up() {
    [ "$(id -u)" -eq 0 ] || die "run as root: network namespaces need it"
    [ -n "$PGBIN" ] || die "PostgreSQL is not installed: run make deps"
    [ ! -e "$S" ] || down >/dev/null
    id crm >/dev/null 2>&1 || useradd --system --user-group --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin crm
    mkdir -p "$S"
    chmod 755 "$S"
    DB_PASSWORD=$(secret) REPL_PASSWORD=$(secret) JWT_SECRET=$(secret)$(secret)
    net_up
    say "network $NET.0/24: ${HOSTS[*]}"
    mail_up
    primary_up
    standby_up
    say "PostgreSQL: primary pg1 ($NET.11), synchronous standby pg2 ($NET.12)"
    app_install app1
    app_install app2
    as_crm app1 env CRM_ENV_FILE="$S/app1/etc/crm/crm.env" "$S/app1/usr/bin/crmctl" migrate \
        --schema "$S/app1/usr/share/crm/schema.sql" >"$S/migrate.log" 2>&1 ||
        die "crmctl migrate failed: see $S/migrate.log"
    (umask 077; as_crm app1 env CRM_ENV_FILE="$S/app1/etc/crm/crm.env" \
        "$S/app1/usr/bin/crmctl" create-user --role ADMIN --email admin@example.com \
        --name Administrator >"$S/admin.txt")
    app_start app1
    app_start app2
    front_up
    say "serving http://$NET.2 (hosts $NET.21 and $NET.22; first ADMIN in $S/admin.txt)"
}

down() {
    local h
    [ -e "$S" ] || ip link show "$BR" >/dev/null 2>&1 || return 0
    # Everything this deployment runs lives in its namespaces; killed until none is left (a
    # PostgreSQL may fork a backend for a connection as its postmaster is being killed).
    local pids
    for _ in $(seq 50); do
        pids=$(for h in "${HOSTS[@]}"; do ip netns pids "crm-$h" 2>/dev/null; done)
        [ -n "$pids" ] || break
        kill -9 $pids 2>/dev/null || true
        sleep 0.1
    done
    net_down
    rm -rf "$S"
    say "removed"
}

status() {
    local h
    for h in "${HOSTS[@]}"; do
        printf '%-6s %-11s %s processes\n' "$h" "$NET.${ADDR[$h]}" \
            "$(ip netns pids "crm-$h" 2>/dev/null | wc -l)"
    done
    for h in pg1 pg2; do
        printf '%s: %s\n' "$h" "$(DB=postgres psql_on "$h" -c \
            "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END" 2>/dev/null ||
            echo down)"
    done
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
# What an operator does to fail over: the primary is lost (here: stopped as a power cut would),
# the standby is promoted.
crash) as_crm "$2" "$PGBIN/pg_ctl" -D "$S/$2/data" -m immediate -w stop >/dev/null ;;
promote) as_crm "$2" "$PGBIN/pg_ctl" -D "$S/$2/data" -w promote >/dev/null ;;
nginx-kill) nginx_kill "$2" ;;
nginx-start) nginx_start "$2" ;;
sql) h=$2; shift 2; psql_on "$h" "$@" ;;
*) die "usage: cluster.sh up|down|status|crash HOST|promote HOST|nginx-kill HOST|nginx-start HOST|sql HOST ARGS" ;;
esac
