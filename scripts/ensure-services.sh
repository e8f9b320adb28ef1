#!/usr/bin/env bash
# Make sure the PostgreSQL and Redis the tests use are running; start them where we can.
set -u

pg_host=127.0.0.1 pg_port=5432 redis_port=6379

pg_up() { pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null || python3 -c "import socket; socket.create_connection(('$pg_host', $pg_port), 1)" 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; }

# TEST_DATABASE_URL / TEST_REDIS_URL point the tests at services elsewhere: nothing to start here.
if [ -z "${TEST_DATABASE_URL:-}" ] && ! pg_up; then
  echo "PostgreSQL is not answering on $pg_host:$pg_port; starting it..."
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 0.5; done
  pg_up || { echo "PostgreSQL is not running and could not be started: install it, or point TEST_DATABASE_URL at one." >&2; exit 1; }
fi

if [ -z "${TEST_REDIS_URL:-}" ] && ! redis_up; then
  echo "Redis is not answering on 127.0.0.1:$redis_port; starting it..."
  if command -v redis-server >/dev/null; then
    mkdir -p /tmp/djinn-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
      --dir /tmp/djinn-redis --logfile /tmp/djinn-redis/redis.log
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 0.2; done
  redis_up || { echo "Redis is not running and could not be started: install redis-server, or point TEST_REDIS_URL at one." >&2; exit 1; }
fi
echo "PostgreSQL and Redis are up${TEST_DATABASE_URL:+ (database from TEST_DATABASE_URL)}${TEST_REDIS_URL:+ (Redis from TEST_REDIS_URL)}."
