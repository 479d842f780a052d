#!/usr/bin/env bash
# Makes sure a PostgreSQL the tests can use runs on 127.0.0.1:5432: installs Debian's
# `postgresql` where it is missing, starts the cluster when it is stopped, lets local TCP
# connections in without a password (trust: a test database on a CI machine only), and
# creates the database `test`. The tests give each run a schema of its own inside it.
# Idempotent and quick when all of that is already so.
set -euo pipefail

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /etc/postgresql | sort -V | tail -1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
  # First match wins in pg_hba.conf: put the trust line on top.
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  restart=1
fi

if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
elif [ "${restart:-0}" = 1 ]; then
  pg_ctlcluster --skip-systemctl-redirect "$version" main reload
fi

for _ in $(seq 1 30); do
  if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    break
  fi
  sleep 1
done
# The tests of one binary run at once (three-node and two-node tests, the conformance suite),
# each node with its own pool: Debian's default of 100 connections is too tight for them.
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -Atc 'show max_connections')" -lt 300 ]; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'alter system set max_connections = 300'
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart
  for _ in $(seq 1 30); do
    if psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
      break
    fi
    sleep 1
  done
fi
psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname = 'test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
echo "PostgreSQL $version on 127.0.0.1:5432, database test"
