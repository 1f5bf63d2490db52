#!/usr/bin/env bash
# Checks mtpaas's nginx configuration with a real nginx.
#
#   bash scripts/nginx-check.sh [MTPAAS_URL]
#
# 1. `nginx -t` on the production configuration (nginx/conf.d + nginx/snippets), with
#    a throwaway self-signed certificate and the upstream names pointed at 127.0.0.1,
#    and checks of its effective text (`nginx -T`): forwarded headers, body limit,
#    wildcard tenant server block, every proxied location using the shared settings.
# 2. Starts nginx with nginx/test/nginx-ci.conf.template (HTTP only, 127.0.0.1) in
#    front of a running mtpaas and checks, through nginx, that the tenant is resolved
#    from the subdomain (univ_8.mtpaas.test → "univ_8"), that X-Tenant-ID passes
#    through, and that a 2 MB body is refused by nginx with 413 (JSON body).
#
# The backend is not started here: start mtpaas first, with BASE_DOMAIN=mtpaas.test,
# e.g. `BASE_DOMAIN=mtpaas.test cargo run --release -- serve`.
#
# Environment:
#   MTPAAS_URL              backend URL (default http://127.0.0.1:8085; the first
#                           argument wins)
#   NGINX_PORT              port for the test nginx (default: first free from 18480)
#   NGINX                   nginx binary (default: nginx on PATH or /usr/sbin/nginx;
#                           installed with apt-get when missing)
#   NGINX_CHECK_NO_INSTALL  set to 1 to fail instead of installing missing tools
#
# nginx is stopped on exit; the temporary directory is removed.

# nginx variables ($host, $scheme, ...) in single-quoted grep patterns are literal on purpose.
# shellcheck disable=SC2016

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MTPAAS_URL=${1:-${MTPAAS_URL:-http://127.0.0.1:8085}}
MTPAAS_URL=${MTPAAS_URL%/}
TEST_DOMAIN=mtpaas.test
PROD_WILDCARD='server_name ~^(?<tenant>[a-z][a-z0-9_]*)\.myservice\.k-university\.ai$;'
CI_WILDCARD='server_name ~^(?<tenant>[a-z][a-z0-9_]*)\.mtpaas\.test$;'

WORK=
NGINX_PID=
CHECKS=0

say() { printf '==> %s\n' "$*"; }
ok() {
    CHECKS=$((CHECKS + 1))
    printf '  ok  %s\n' "$*"
}
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $NGINX_PID ]] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -n $WORK && -s $WORK/ci/error.log ]]; then
        printf -- '--- nginx error.log (last lines) ---\n' >&2
        tail -n 20 "$WORK/ci/error.log" >&2 || true
    fi
    [[ -n $WORK ]] && rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------------------------
# Tools
# ----------------------------------------------------------------------------

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        fail "need root to run: $* (install it yourself, or run this script as root)"
    fi
}

APT_UPDATED=
apt_install() { # apt_install <package>...: the first package apt knows is installed
    [[ ${NGINX_CHECK_NO_INSTALL:-0} == 1 ]] && fail "missing tool, and NGINX_CHECK_NO_INSTALL=1 (wanted: $*)"
    command -v apt-get >/dev/null 2>&1 || fail "missing tool and no apt-get to install it (wanted: $*)"
    if [[ -z $APT_UPDATED ]]; then
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    local pkg
    for pkg in "$@"; do
        # Read the whole answer first: with pipefail, `grep -q` quitting early can
        # fail the pipeline with apt-cache's SIGPIPE.
        local policy
        policy=$(apt-cache policy "$pkg" 2>/dev/null || true)
        if grep -q 'Candidate: [^(]' <<<"$policy"; then
            say "installing $pkg (apt-get)"
            as_root env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
            return 0
        fi
    done
    fail "none of these packages is available from apt: $*"
}

need() { # need <command> <package>...
    command -v "$1" >/dev/null 2>&1 || apt_install "${@:2}"
    command -v "$1" >/dev/null 2>&1 || fail "$1 is still missing after installing ${*:2}"
}

find_nginx() {
    if [[ -n ${NGINX:-} ]]; then
        [[ -x $NGINX ]] || fail "NGINX=$NGINX is not an executable"
        return
    fi
    NGINX=$(command -v nginx 2>/dev/null || true)
    [[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
    if [[ -z $NGINX ]]; then
        # Debian 12: `nginx` is the plain server; `nginx-light` is a transitional
        # package on top of it. Older releases only have nginx-light / nginx-core.
        apt_install nginx nginx-light nginx-core
        NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
        [[ -x $NGINX ]] || fail "nginx is still missing after installing it"
    fi
}

need curl curl
need openssl openssl
find_nginx
say "using $("$NGINX" -v 2>&1) ($NGINX)"

# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

json_field() { # json_field <file> <key>: the value as text, "null" when absent
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$1" "$2" <<'PY' 2>/dev/null || echo '<not JSON>'
import json, sys
v = json.load(open(sys.argv[1], encoding="utf-8")).get(sys.argv[2])
print("null" if v is None else v)
PY
    elif command -v node >/dev/null 2>&1; then
        node -e '
const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]];
console.log(v == null ? "null" : v);' "$1" "$2" 2>/dev/null || echo '<not JSON>'
    else
        local v
        v=$(sed -nE "s/.*\"$2\"[[:space:]]*:[[:space:]]*\"([^\"]*)\".*/\\1/p" "$1" | head -n 1)
        echo "${v:-null}"
    fi
}

BODY=
http() { # http <curl args...>: prints the status code; the body is in $BODY
    curl -sS -o "$BODY" -w '%{http_code}' --max-time 10 "$@"
}

# ----------------------------------------------------------------------------
# Work directory
# ----------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtpaas-nginx-check.XXXXXX")
# When started as root, nginx workers run as nobody and must traverse this tree.
chmod 755 "$WORK"
BODY=$WORK/body

case $MTPAAS_URL in
    http://*) ;;
    *) fail "MTPAAS_URL must be an http:// URL, got: $MTPAAS_URL" ;;
esac
BACKEND=${MTPAAS_URL#http://}
BACKEND=${BACKEND%%/*}
if [[ $BACKEND != *:* || $BACKEND == \[*\] ]]; then
    BACKEND=$BACKEND:80
fi

# ----------------------------------------------------------------------------
# 1. The production configuration
# ----------------------------------------------------------------------------

say "production configuration: nginx -t (nginx/conf.d, nginx/snippets)"
PROD=$WORK/prod
mkdir -p "$PROD/conf.d" "$PROD/snippets" "$PROD/tmp" \
    "$PROD/certs/k-university.ai" "$PROD/certs/myservice.k-university.ai"
cp "$ROOT"/nginx/snippets/*.conf "$PROD/snippets/"
cp "$ROOT"/nginx/conf.d/*.conf "$PROD/conf.d/"
if [[ $(id -u) -ne 0 ]]; then
    # `nginx -t` binds the listen ports: without root, test on unprivileged ones.
    sed -E -i 's/^([[:space:]]*listen[[:space:]]+)80([[:space:];])/\118080\2/;
               s/^([[:space:]]*listen[[:space:]]+)443([[:space:];])/\118443\2/' "$PROD/conf.d/mtpaas.conf"
    say "not root: listen ports 80/443 tested as 18080/18443"
fi
# Compose service names do not resolve here: same upstreams, on 127.0.0.1.
sed -E 's/^([[:space:]]*server[[:space:]]+)[^[:space:];]+:([0-9]+)/\1127.0.0.1:\2/' \
    "$ROOT/nginx/conf.d/mtpaas-upstreams.conf" >"$PROD/conf.d/mtpaas-upstreams.conf"

# A throwaway certificate for both certificate paths of the snippets.
openssl req -x509 -nodes -days 1 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=myservice.k-university.ai" \
    -addext "subjectAltName=DNS:myservice.k-university.ai,DNS:*.myservice.k-university.ai" \
    -keyout "$PROD/certs/myservice.k-university.ai/privkey.pem" \
    -out "$PROD/certs/myservice.k-university.ai/fullchain.pem" 2>/dev/null \
    || fail "openssl could not create a test certificate"
cp "$PROD"/certs/myservice.k-university.ai/*.pem "$PROD/certs/k-university.ai/"
chmod 600 "$PROD"/certs/*/privkey.pem

cat >"$PROD/nginx.conf" <<EOF
pid $PROD/nginx.pid;
error_log $PROD/error.log warn;
events { worker_connections 64; }
http {
    access_log $PROD/access.log;
    client_body_temp_path $PROD/tmp/client_body;
    proxy_temp_path       $PROD/tmp/proxy;
    fastcgi_temp_path     $PROD/tmp/fastcgi;
    uwsgi_temp_path       $PROD/tmp/uwsgi;
    scgi_temp_path        $PROD/tmp/scgi;
    include conf.d/*.conf;
}
EOF

if ! out=$("$NGINX" -t -p "$PROD" -c "$PROD/nginx.conf" -e "$PROD/error.log" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "nginx -t rejects the production configuration"
fi
printf '%s\n' "$out" | sed 's/^/      /'
ok "nginx -t accepts nginx/conf.d/mtpaas.conf with its snippets"

"$NGINX" -T -p "$PROD" -c "$PROD/nginx.conf" -e "$PROD/error.log" >"$WORK/prod-effective.conf" 2>/dev/null \
    || fail "nginx -T failed"
EFFECTIVE=$WORK/prod-effective.conf

has() { grep -Eq -- "$1" "$EFFECTIVE"; }
has 'proxy_set_header[[:space:]]+X-Forwarded-Proto[[:space:]]+\$scheme;' \
    || fail "X-Forwarded-Proto is not forwarded (proxy_set_header X-Forwarded-Proto \$scheme)"
ok "X-Forwarded-Proto \$scheme is forwarded"
has 'proxy_set_header[[:space:]]+X-Forwarded-For[[:space:]]+\$proxy_add_x_forwarded_for;' \
    || fail "X-Forwarded-For is not forwarded"
ok "X-Forwarded-For \$proxy_add_x_forwarded_for is forwarded"
has 'proxy_set_header[[:space:]]+X-Real-IP[[:space:]]+\$remote_addr;' || fail "X-Real-IP is not forwarded"
ok "X-Real-IP \$remote_addr is forwarded"
has 'proxy_set_header[[:space:]]+Host[[:space:]]+\$host;' || fail "Host is not forwarded as \$host"
ok "Host is forwarded unchanged (\$host)"
has 'client_max_body_size[[:space:]]+1m;' || fail "client_max_body_size 1m is not set"
ok "client_max_body_size 1m"
grep -Fq -- "$PROD_WILDCARD" "$EFFECTIVE" || fail "the wildcard tenant server block is missing: $PROD_WILDCARD"
ok "wildcard tenant server block for *.myservice.k-university.ai"
grep -Eq 'return[[:space:]]+301[[:space:]]+https://\$host\$request_uri;' "$EFFECTIVE" \
    || fail "no HTTP → HTTPS redirect"
ok "port 80 redirects to https"

# Every server listening on 443 includes a certificate snippet; every location that
# proxies includes the shared proxy settings (proxy_set_header is not inherited by a
# location that sets its own, so the shared file must be in each of them).
check_blocks() { # check_blocks <file>...
    awk '
        FNR == 1 { depth = 0; inloc = 0; insrv = 0 }
        {
            line = $0
            sub(/#.*/, "", line)
            if (!insrv && line ~ /^[[:space:]]*server[[:space:]]*\{/) {
                insrv = 1; srv_depth = depth; srv_ssl = 0; srv_cert = 0; srv_start = FNR
            }
            if (insrv && line ~ /listen[[:space:]].*443[[:space:]]+ssl/) srv_ssl = 1
            if (insrv && line ~ /include[[:space:]]+snippets\/ssl-[^;]*;/) srv_cert = 1
            if (!inloc && line ~ /^[[:space:]]*location[[:space:]]/) {
                inloc = 1; loc_depth = depth; has_pass = 0; has_inc = 0; loc_start = FNR
            }
            if (inloc && line ~ /proxy_pass[[:space:]]/) has_pass = 1
            if (inloc && line ~ /include[[:space:]]+snippets\/mtpaas-proxy\.conf;/) has_inc = 1
            opened = gsub(/\{/, "{", line)
            closed = gsub(/\}/, "}", line)
            depth += opened - closed
            if (inloc && depth == loc_depth) {
                inloc = 0
                if (has_pass && !has_inc) {
                    printf "%s:%d: location proxies without including snippets/mtpaas-proxy.conf\n", FILENAME, loc_start
                    bad = 1
                }
            }
            if (insrv && depth == srv_depth) {
                insrv = 0
                if (srv_ssl && !srv_cert) {
                    printf "%s:%d: server on 443 without an ssl certificate snippet\n", FILENAME, srv_start
                    bad = 1
                }
            }
        }
        END { exit bad }
    ' "$@"
}
check_blocks "$ROOT"/nginx/conf.d/*.conf "$ROOT"/nginx/snippets/*.conf "$ROOT/nginx/test/nginx-ci.conf.template" \
    || fail "see above"
ok "every proxied location includes snippets/mtpaas-proxy.conf; every 443 server has a certificate"

# ----------------------------------------------------------------------------
# 2. Through a running nginx, in front of the backend
# ----------------------------------------------------------------------------

say "backend at $MTPAAS_URL"
code=$(http -H "Host: univ_8.$TEST_DOMAIN" "$MTPAAS_URL/api/health") \
    || fail "the backend does not answer at $MTPAAS_URL (start it first: BASE_DOMAIN=$TEST_DOMAIN mtpaas serve)"
[[ $code == 200 ]] || fail "GET $MTPAAS_URL/api/health answered $code, expected 200"
tenant=$(json_field "$BODY" tenant_id)
[[ $tenant == univ_8 ]] \
    || fail "the backend itself resolves Host univ_8.$TEST_DOMAIN to tenant_id=$tenant: start it with BASE_DOMAIN=$TEST_DOMAIN"
ok "backend resolves Host univ_8.$TEST_DOMAIN to univ_8 (BASE_DOMAIN=$TEST_DOMAIN)"

if [[ -n ${NGINX_PORT:-} ]]; then
    port_open "$NGINX_PORT" && fail "NGINX_PORT=$NGINX_PORT is already in use"
else
    NGINX_PORT=18480
    while port_open "$NGINX_PORT"; do
        NGINX_PORT=$((NGINX_PORT + 1))
        ((NGINX_PORT < 18580)) || fail "no free port in 18480-18579; set NGINX_PORT"
    done
fi
NGINX_URL=http://127.0.0.1:$NGINX_PORT

say "test nginx on $NGINX_URL → $BACKEND (nginx/test/nginx-ci.conf.template)"
CI=$WORK/ci
mkdir -p "$CI/snippets" "$CI/tmp"
cp "$ROOT"/nginx/snippets/*.conf "$CI/snippets/"
sed -e "s|@@PREFIX@@|$CI|g" -e "s|@@LISTEN@@|127.0.0.1:$NGINX_PORT|g" -e "s|@@BACKEND@@|$BACKEND|g" \
    "$ROOT/nginx/test/nginx-ci.conf.template" >"$CI/nginx.conf"
grep -q '@@' "$CI/nginx.conf" && fail "unreplaced placeholder in the CI configuration"
grep -Fq -- "$CI_WILDCARD" "$CI/nginx.conf" || fail "the CI configuration lacks the wildcard tenant server block"

if ! out=$("$NGINX" -t -p "$CI" -c "$CI/nginx.conf" -e "$CI/error.log" 2>&1); then
    printf '%s\n' "$out" >&2
    fail "nginx -t rejects the CI configuration"
fi
ok "nginx -t accepts the CI configuration"

"$NGINX" -p "$CI" -c "$CI/nginx.conf" -e "$CI/error.log" -g 'daemon off;' &
NGINX_PID=$!
for _ in $(seq 1 50); do
    kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx exited at start-up"
    port_open "$NGINX_PORT" && break
    sleep 0.1
done
port_open "$NGINX_PORT" || fail "nginx does not listen on $NGINX_PORT"
ok "nginx started (pid $NGINX_PID)"

code=$(http -H "Host: univ_8.$TEST_DOMAIN" "$NGINX_URL/api/health") || fail "no answer from nginx"
[[ $code == 200 ]] || fail "Host univ_8.$TEST_DOMAIN /api/health via nginx: HTTP $code, expected 200"
tenant=$(json_field "$BODY" tenant_id)
[[ $tenant == univ_8 ]] || fail "Host univ_8.$TEST_DOMAIN via nginx: tenant_id=$tenant, expected univ_8"
ok "Host univ_8.$TEST_DOMAIN → /api/health → tenant_id univ_8"

code=$(http -H "Host: univ_8.$TEST_DOMAIN:8443" "$NGINX_URL/api/health") || fail "no answer from nginx"
tenant=$(json_field "$BODY" tenant_id)
[[ $code == 200 && $tenant == univ_8 ]] \
    || fail "Host univ_8.$TEST_DOMAIN:8443 via nginx: HTTP $code, tenant_id=$tenant, expected 200 univ_8"
ok "Host with a port (univ_8.$TEST_DOMAIN:8443) → tenant_id univ_8"

code=$(http -H "Host: $TEST_DOMAIN" -H 'X-Tenant-ID: univ_9' "$NGINX_URL/api/health") || fail "no answer from nginx"
tenant=$(json_field "$BODY" tenant_id)
[[ $code == 200 && $tenant == univ_9 ]] \
    || fail "X-Tenant-ID: univ_9 via nginx: HTTP $code, tenant_id=$tenant, expected 200 univ_9"
ok "X-Tenant-ID passes through nginx unchanged (univ_9)"

code=$(http -H "Host: $TEST_DOMAIN" "$NGINX_URL/api/health") || fail "no answer from nginx"
tenant=$(json_field "$BODY" tenant_id)
[[ $code == 200 && $tenant != univ_8 ]] \
    || fail "Host $TEST_DOMAIN via nginx: HTTP $code, tenant_id=$tenant (expected 200, no univ_8)"
ok "Host $TEST_DOMAIN (no subdomain) → 200, tenant_id $tenant"

head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$WORK/2mb.json"
code=$(http -X POST -H "Host: univ_8.$TEST_DOMAIN" -H 'Content-Type: application/json' \
    --data-binary "@$WORK/2mb.json" "$NGINX_URL/api/tenant/webhook/user-deleted") \
    || fail "no answer from nginx to a 2 MB body"
[[ $code == 413 ]] || fail "a 2 MB body got HTTP $code from nginx, expected 413"
[[ $(json_field "$BODY" code) == payload_too_large ]] \
    || fail "the 413 body is not the JSON error: $(head -c 200 "$BODY")"
ok "a 2 MB body → 413 {\"code\":\"payload_too_large\"} from nginx"

head -c $((16 * 1024)) /dev/zero | tr '\0' 'a' >"$WORK/16k.txt"
code=$(http -X POST -H "Host: univ_8.$TEST_DOMAIN" -H 'Content-Type: application/json' \
    --data-binary "@$WORK/16k.txt" "$NGINX_URL/api/tenant/webhook/user-deleted") \
    || fail "no answer from nginx to a 16 KiB body"
case $code in
    413 | 502 | 504 | 000) fail "a 16 KiB body got HTTP $code via nginx; it should reach the backend" ;;
esac
ok "a 16 KiB body reaches the backend (HTTP $code from the backend)"

say "all $CHECKS checks passed"
