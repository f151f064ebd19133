#!/usr/bin/env bash
# Installs a Java runtime (Debian's openjdk-17-jre-headless) for the Spark engine's tests
# (tests/engines), when no `java` is on PATH. pyspark comes from PyPI (tastebud[spark]);
# Spark's own downloads are never used. Needs root (or sudo) and Debian's package lists.
set -euo pipefail

if command -v java >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-java: no java on PATH and this user cannot install it;" >&2
  echo "  install Debian's 'openjdk-17-jre-headless' package (the Spark tests skip without it)." >&2
  exit 0
fi
echo "install-java: installing Debian's openjdk-17-jre-headless package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The JRE package's postinst expects man directories a slim image may lack.
$SUDO mkdir -p /usr/share/man/man1
$SUDO apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null
java -version 2>&1 | head -1
