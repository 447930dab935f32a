#!/usr/bin/env bash
# Fetch the JVM jars doclake needs from Maven Central into .cache/jars/ (git-ignored), once.
#   scripts/jars.sh spark   Delta + Kafka source for Spark (jars the pyspark wheel does not ship)
#   scripts/jars.sh kafka   the Apache Kafka broker (KRaft) used by the tests and the distributed profile
#   scripts/jars.sh s3      S3A (hadoop-aws + the AWS SDK v2 bundle) and doclake's conditional-PUT Delta LogStore,
#                           built with javac from scripts/logstore (needs the spark set and a JDK)
# Re-running is a no-op once a set is complete (marker file), so a second start needs no network.
# Versions: the newest artifacts Maven Central serves for our Spark 4.1 / delta-spark 4.4 line (see
# docs/architecture.md, "Update stream": the exact pyspark/delta-spark patch jars are not published there).
set -euo pipefail
cd "$(dirname "$0")/.."
DELTA_JAR_VERSION="${DOCLAKE_DELTA_JAR_VERSION:-4.4.0}"
SPARK_KAFKA_VERSION="${DOCLAKE_SPARK_KAFKA_VERSION:-4.1.3}"
SPARK_TOKEN_PROVIDER_VERSION="${DOCLAKE_SPARK_TOKEN_PROVIDER_VERSION:-4.0.0}"
KAFKA_VERSION="${DOCLAKE_KAFKA_VERSION:-3.9.1}"
# hadoop-aws must match the Hadoop the pyspark wheel ships (hadoop-client-api-3.4.2.jar in pyspark 4.1);
# it brings the AWS SDK bundle it was built against (2.29.52 for 3.4.2).
HADOOP_AWS_VERSION="${DOCLAKE_HADOOP_AWS_VERSION:-3.4.2}"
ROOT="${DOCLAKE_JARS_DIR:-$(pwd)/.cache/jars}"
what="${1:?usage: scripts/jars.sh spark|kafka|s3}"

dep() { # groupId artifactId version [exclusion groupId:artifactId]
  local excl=""
  if [ -n "${4:-}" ]; then
    excl="<exclusions><exclusion><groupId>${4%%:*}</groupId><artifactId>${4##*:}</artifactId></exclusion></exclusions>"
  fi
  echo "<dependency><groupId>$1</groupId><artifactId>$2</artifactId><version>$3</version>$excl</dependency>"
}

fetch() { # name deps-xml
  local name="$1" deps="$2" dir="$ROOT/$1"
  if [ -f "$dir/.complete" ]; then return 0; fi
  mkdir -p "$dir/libs"
  cat > "$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>doclake</groupId><artifactId>jars-$name</artifactId><version>1</version>
<dependencies>$deps</dependencies></project>
POM
  mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs"
  touch "$dir/.complete"
}

pyspark_jars() {
  local py=.venv/bin/python; [ -x "$py" ] || py=python3  # a container image has no .venv
  "$py" -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))'
}

drop_shipped() { # name
  # Drop what the pyspark wheel already ships (hadoop, parquet, log4j, jackson …): two copies of a
  # class on the classpath is how a Spark job fails at runtime in odd ways.
  local shipped jar base artifact
  shipped="$(pyspark_jars)"
  for jar in "$ROOT/$1/libs"/*.jar; do
    base="$(basename "$jar" .jar)"; artifact="${base%-*}"
    if ls "$shipped/$artifact"-[0-9]*.jar >/dev/null 2>&1; then rm -f "$jar"; fi
  done
}

logstore_hash() { # the LogStore jar is named after its sources: an edited source is rebuilt on next use
  find scripts/logstore/src -name '*.java' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12
}

build_logstore() {
  local hash jar work cp
  hash="$(logstore_hash)"; jar="$ROOT/s3/libs/doclake-logstore-$hash.jar"
  if [ -f "$jar" ]; then return 0; fi
  work="$(mktemp -d)"
  cp="$(ls "$ROOT"/spark/libs/delta-storage-*.jar "$ROOT"/s3/libs/*.jar "$(pyspark_jars)"/hadoop-client-api-*.jar | paste -sd:)"
  find scripts/logstore/src -name '*.java' -print0 | xargs -0 javac --release 17 -Xlint:-options -cp "$cp" -d "$work"
  rm -f "$ROOT"/s3/libs/doclake-logstore-*.jar
  jar cf "$jar.tmp" -C "$work" . && mv "$jar.tmp" "$jar"
  rm -rf "$work"
}

case "$what" in
  spark)
    # spark-sql-kafka 4.1.x names a token-provider jar Central does not serve for 4.1; the 4.0.0 one is
    # the same module (delegation-token helpers) and is what we put beside it.
    fetch spark "$(dep io.delta delta-spark_4.1_2.13 "$DELTA_JAR_VERSION")
$(dep org.apache.spark spark-sql-kafka-0-10_2.13 "$SPARK_KAFKA_VERSION" org.apache.spark:spark-token-provider-kafka-0-10_2.13)
$(dep org.apache.spark spark-token-provider-kafka-0-10_2.13 "$SPARK_TOKEN_PROVIDER_VERSION")"
    drop_shipped spark
    ;;
  kafka)
    fetch kafka "$(dep org.apache.kafka kafka_2.13 "$KAFKA_VERSION")
$(dep org.slf4j slf4j-reload4j 1.7.36)"
    ;;
  s3)
    bash scripts/jars.sh spark >/dev/null  # the LogStore compiles against delta-storage
    fetch s3 "$(dep org.apache.hadoop hadoop-aws "$HADOOP_AWS_VERSION")"
    drop_shipped s3
    build_logstore
    ;;
  *) echo "unknown jar set: $what" >&2; exit 2 ;;
esac
echo "$ROOT/$what/libs"
