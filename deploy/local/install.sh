#!/usr/bin/env bash
# Installs what the local stack runs on a fresh Debian machine, and pre-fetches the Kafka jars.
# Idempotent: with everything present it checks and returns in well under a second.
#
#   deploy/local/install.sh            # apt packages + Kafka jars
#
# - apt: redis-server, prometheus, prometheus-alertmanager (and Java 17 + Maven if missing),
#   noninteractive, `apt-get update` only when something is missing.
# - Debian's packages would start system services on the default ports (Redis 6379,
#   Prometheus 9090, node exporter 9100, Alertmanager 9093/9094). The stack never uses those
#   ports (see StackSettings in dev/responder_dev/settings.py), so a running system service cannot
#   collide with it; on top of that, while this script installs, a policy-rc.d that denies
#   service starts is put in place (when the machine has none), so nothing is started at all.
#   Services that are already running are left alone.
# - Kafka jars: org.apache.kafka:kafka_2.13 (version from deploy/local/kafka/pom.xml, or
#   RESPONDER_STACK__KAFKA_VERSION) copied by Maven into
#   ${RESPONDER_STACK__CACHE_DIR:-~/.cache/musearoo-responder}/kafka-<version>/libs, the folder
#   dev/responder_dev/stack/kafka.py uses; written to a scratch folder and renamed when complete.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/kafka/pom.xml"

log() { printf 'install: %s\n' "$*" >&2; }

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- apt packages -----------------------------------------------------------------------------
wanted=(redis-server prometheus prometheus-alertmanager)
command -v java >/dev/null 2>&1 || wanted+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || wanted+=(maven)

missing=()
for pkg in "${wanted[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "installed" ] || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  added_policy=0
  if [ ! -e "$policy" ]; then
    # Deny service starts during the install (invoke-rc.d honours exit 101).
    printf '#!/bin/sh\nexit 101\n' | sudo_if_needed tee "$policy" >/dev/null
    sudo_if_needed chmod 755 "$policy"
    added_policy=1
  fi
  cleanup_policy() { if [ "$added_policy" = 1 ]; then sudo_if_needed rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  export DEBIAN_FRONTEND=noninteractive
  sudo_if_needed apt-get update -q
  sudo_if_needed apt-get install -y -q --no-install-recommends "${missing[@]}"
  cleanup_policy
  trap - EXIT
else
  log "apt packages present: ${wanted[*]}"
fi

# --- Kafka jars -------------------------------------------------------------------------------
default_version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n 1)"
version="${RESPONDER_STACK__KAFKA_VERSION:-$default_version}"
cache="${RESPONDER_STACK__CACHE_DIR:-$HOME/.cache/musearoo-responder}"
cache="${cache/#\~/$HOME}"
libs="$cache/kafka-$version/libs"

if [ -f "$libs/.complete" ]; then
  log "Kafka $version jars present in $libs"
else
  scratch="$cache/kafka-$version/libs.partial-$$"
  rm -rf "$scratch"
  mkdir -p "$cache/kafka-$version"
  log "fetching org.apache.kafka:kafka_2.13:$version jars with Maven into $libs"
  mvn_log="$cache/kafka-$version/mvn.log"
  if ! mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    "-Dkafka.version=$version" "-DoutputDirectory=$scratch" -DincludeScope=runtime >"$mvn_log" 2>&1; then
    cat "$mvn_log" >&2
    log "Maven could not fetch the Kafka jars (log above, also in $mvn_log)"
    exit 1
  fi
  echo "$version" >"$scratch/.complete"
  if [ -f "$libs/.complete" ]; then
    rm -rf "$scratch"
  else
    rm -rf "$libs"
    mv "$scratch" "$libs"
  fi
  log "Kafka jars ready"
fi
