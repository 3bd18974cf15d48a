#!/bin/sh
# Usage: render-config.sh CONFIG SECRETS_DIR > rendered.yml
#
# Prints CONFIG (alertmanager.yml) with every '@@SECRET:<name>@@' replaced by the first line of SECRETS_DIR/name.
# Alertmanager 0.25 and 0.26 read a password or a token from a file (*_file settings) but not a webhook URL, and a
# pager's webhook or a dead-man's-switch ping URL is itself the credential: so the URLs stay in secret files and
# this script writes them into the configuration when Alertmanager starts (docker-compose.yml's entrypoint) or
# before its configuration is handed to Kubernetes (docs/operations.md). POSIX sh and awk: it runs in the
# busybox of prom/alertmanager as on Debian.
#
# A missing or empty file, or a value that is not one http(s) URL without spaces or quotes, stops it with a
# message naming the file and exit status 1: Alertmanager must not start with a receiver that cannot deliver.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 CONFIG SECRETS_DIR > rendered.yml" >&2
    exit 2
fi
config=$1
secrets=$2
if [ ! -r "$config" ]; then
    echo "$0: cannot read the configuration $config" >&2
    exit 1
fi

awk -v secrets="$secrets" -v script="$0" '
function fail(message) {
    print script ": " message > "/dev/stderr"
    failed = 1
    exit 1
}
function secret(name,    path, value, status) {
    path = secrets "/" name
    value = ""
    status = (getline value < path)
    close(path)
    if (status < 0) fail("secret file " path " is missing (it holds the URL for @@SECRET:" name "@@)")
    sub(/\r$/, "", value)
    if (value == "") fail("secret file " path " is empty (it holds the URL for @@SECRET:" name "@@)")
    if (value !~ /^https?:\/\/[^ \t\047"]+$/) fail("secret file " path " is not one http(s) URL without spaces or quotes")
    return value
}
{
    line = $0
    out = ""
    while (match(line, /@@SECRET:[A-Za-z0-9_.-]+@@/)) {
        name = substr(line, RSTART + 9, RLENGTH - 11)
        out = out substr(line, 1, RSTART - 1) secret(name)
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}
END { if (failed) exit 1 }
' "$config"
