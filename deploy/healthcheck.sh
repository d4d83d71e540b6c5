#!/bin/bash
# Container healthcheck without curl: one GET through bash's /dev/tcp.
# Usage: deskbridge-healthcheck [PATH] [PORT]   (defaults /healthz and the port of
# DESKBRIDGE_LISTEN, else 8080).  Exit 0 only on an HTTP 200 answer.
path=${1:-/healthz}
port=${2:-${DESKBRIDGE_LISTEN##*:}}
port=${port:-8080}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
# Only the status line matters; a slow daemon is caught by the caller's timeout.
IFS=' ' read -r -t 3 _ status _ <&3 || exit 1
exec 3<&-
[ "$status" = 200 ]
