#!/bin/sh
# The secrets docker-compose.yml mounts, each a 0600 copy owned by the container user that reads it:
#   secrets/nobody/    (uid 65534: the prom/prometheus and prom/alertmanager images)
#     web-config.yml   --web.config.file of both: the user `sentinel` and its password's bcrypt hash
#     web.password     Prometheus' password_file towards Alertmanager
#     receiver.token   Alertmanager's credentials_file towards the receiver
#   secrets/receiver/  (uid 10001: the tts-sentinel image's user)
#     receiver.token   the receiver's token_file (the same token)
#     web.password     the receiver's alertmanager_password_file (pages go to the authenticated Alertmanager)
#   secrets/grafana/   (uid 472: the grafana image)
#     web.password     the Prometheus data source's basic auth password
# Usage, as root, next to docker-compose.yml:  sh deploy/compose/make-secrets.sh [DIR]   (DIR default ./secrets)
# Needs htpasswd (apache2-utils), or a python3 with bcrypt (pip install bcrypt; PYTHON=path picks it), for the hash.
set -eu
dir=${1:-./secrets}
umask 077
mkdir -p "$dir/nobody" "$dir/receiver" "$dir/grafana"
token=$(openssl rand -hex 32)
password=$(openssl rand -hex 32)
if command -v htpasswd >/dev/null 2>&1; then
    hash=$(htpasswd -niBC 10 sentinel <<PASS | cut -d: -f2-
$password
PASS
)
else
    hash=$(printf '%s' "$password" | "${PYTHON:-python3}" -c 'import sys, bcrypt; print(bcrypt.hashpw(sys.stdin.buffer.read(), bcrypt.gensalt(10)).decode())')
fi
printf 'basic_auth_users:\n  sentinel: %s\n' "$hash" > "$dir/nobody/web-config.yml"
for d in nobody receiver; do printf '%s\n' "$password" > "$dir/$d/web.password"; done
printf '%s' "$password" > "$dir/grafana/web.password"   # read whole by Grafana's $__file{}: no newline
for d in nobody receiver; do printf '%s\n' "$token" > "$dir/$d/receiver.token"; done
chmod 700 "$dir/nobody" "$dir/receiver" "$dir/grafana"
chmod 600 "$dir"/*/*
chown -R 65534:65534 "$dir/nobody"
chown -R 10001:10001 "$dir/receiver"
chown -R 472:472 "$dir/grafana"
echo "wrote $dir (user sentinel; its password is in $dir/*/web.password)"
