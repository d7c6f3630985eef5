#!/usr/bin/env bash
# install-jars.sh DEST_DIR — put the jars pinned in requirements/jars.lock (the Hadoop cloud connectors: s3a, gs,
# abfs/wasb) into DEST_DIR, Spark's classpath: the jars/ directory of pyspark in a venv.
#
# Each jar is downloaded once from Maven Central into $TFSCORE_CACHE/jars/ and its sha256 and size checked against the
# lock (a mismatch fails naming the jar, and the bad download is not kept). Every run hashes the jars in DEST_DIR, and
# the cached copy of any jar DEST_DIR lacks or has changed before copying it, so neither a damaged cache nor a damaged
# DEST_DIR goes unnoticed; all downloads are verified before DEST_DIR changes. Jars are copied (not linked: DEST_DIR
# may outlive the cache, or be an image layer). DEST_DIR/.tfscore-jars lists what this script installed there: a jar a newer lock no longer names is
# removed, and a jar of the same artifact at another version that this script did not install (e.g. a future pyspark
# shipping it) fails the run instead of putting two versions on the classpath. Warm and unchanged: no download, no copy.
#
# Environment: TFSCORE_CACHE (default ~/.cache/tfscore); JARS_LOCK (default requirements/jars.lock beside this
# script's repo); MAVEN_REPO (default https://repo1.maven.org/maven2); TFSCORE_CA_BUNDLE, a CA bundle for a
# TLS-intercepting proxy (image builds pass PIP_CERT). Downloads use curl, or python3 where there is no curl (images).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JARS_LOCK="${JARS_LOCK:-$(dirname "$HERE")/requirements/jars.lock}"
TFSCORE_CACHE="${TFSCORE_CACHE:-$HOME/.cache/tfscore}"
JARS_CACHE="$TFSCORE_CACHE/jars"
MAVEN_REPO="${MAVEN_REPO:-https://repo1.maven.org/maven2}"
MANIFEST_NAME=.tfscore-jars

log() { printf '[jars %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

jar_name() { # group:artifact:version[:classifier] -> artifact-version[-classifier].jar
  local IFS=: g a v c
  read -r g a v c <<< "$1"
  [[ -n $g && -n $a && -n $v ]] || die "bad coordinate '$1' (want group:artifact:version[:classifier])"
  echo "$a-$v${c:+-$c}.jar"
}

jar_url() { # coordinate -> URL in the Maven repository layout
  local IFS=: g a v c
  read -r g a v c <<< "$1"
  echo "$MAVEN_REPO/${g//.//}/$a/$v/$(jar_name "$1")"
}

fetch() { # url file: download url to file (whole or not at all)
  local url=$1 out=$2
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 ${TFSCORE_CA_BUNDLE:+--cacert "$TFSCORE_CA_BUNDLE"} -o "$out" "$url"
  else
    local py
    py="$(command -v python3 || command -v python3.11)" || die "neither curl nor python3 is installed"
    "$py" - "$url" "$out" "${TFSCORE_CA_BUNDLE:-}" <<'PY'
import shutil, ssl, sys, urllib.request
url, out, ca = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca or None)
try:
    with urllib.request.urlopen(url, timeout=120, context=ctx) as r, open(out, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)
except OSError as exc:  # one line, not a traceback
    sys.exit(f"{url}: {exc}")
PY
  fi
}

verify() { # file coordinate sha256 size -> 0 when the file is exactly the locked jar
  local f=$1 want_sha=$3 want_size=$4
  [[ -f $f && $(stat -c %s "$f") == "$want_size" ]] || return 1
  [[ $(sha256sum "$f" | cut -d' ' -f1) == "$want_sha" ]]
}

download() { # coordinate sha256 size -> the verified jar in $JARS_CACHE (a bad download is not kept)
  local coord=$1 sha=$2 size=$3 name tmp url
  name="$(jar_name "$coord")"; url="$(jar_url "$coord")"
  mkdir -p "$JARS_CACHE"
  tmp="$(mktemp "$JARS_CACHE/.$name.XXXXXX")"
  log "downloading $coord"
  if ! fetch "$url" "$tmp"; then rm -f "$tmp"; die "$coord: download from $url failed"; fi
  if ! verify "$tmp" "$coord" "$sha" "$size"; then
    local got_sha got_size
    got_sha="$(sha256sum "$tmp" | cut -d' ' -f1)"; got_size="$(stat -c %s "$tmp")"
    rm -f "$tmp"
    die "$coord: sha256 $got_sha ($got_size bytes) does not match jars.lock ($sha, $size bytes); not installed"
  fi
  chmod 0644 "$tmp"   # mktemp makes files 0600; jars must be readable by every user (images run as uid 1000)
  mv -f "$tmp" "$JARS_CACHE/$name"
}

jar_is() { # jar group artifact -> 0 when the jar carries Maven's metadata of group:artifact
  local entry="META-INF/maven/$2/$3/pom.properties"
  if command -v unzip >/dev/null 2>&1; then
    unzip -Z1 "$1" 2>/dev/null | grep -qxF "$entry"
  else
    "$(command -v python3 || command -v python3.11)" -c \
      'import sys, zipfile; sys.exit(0 if sys.argv[2] in zipfile.ZipFile(sys.argv[1]).namelist() else 1)' "$1" "$entry"
  fi
}

read_lock() { # prints "coordinate sha256 size" lines of the lock (comments and blank lines dropped)
  [[ -f $JARS_LOCK ]] || die "no lock file $JARS_LOCK"
  local line n=0 coord sha size extra
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line="${line%%#*}"
    [[ -n ${line// /} ]] || continue
    read -r coord sha size extra <<< "$line"
    [[ $sha =~ ^[0-9a-f]{64}$ && $size =~ ^[0-9]+$ && -z ${extra:-} ]] ||
      die "$JARS_LOCK line $n: want 'group:artifact:version[:classifier] sha256 size', got '$line'"
    echo "$coord $sha $size"
  done < "$JARS_LOCK"
}

install_jars() { # dest
  local dest=$1 coord sha size name installed=0 kept fetched=0
  [[ -d $dest ]] || die "DEST_DIR $dest is not a directory (want pyspark's jars/ directory)"
  local manifest="$dest/$MANIFEST_NAME" lock_lines
  lock_lines="$(read_lock)"
  local -A want=() previous=() cache_sha=() dest_sha=() coord_of=() sha_of=() size_of=()
  local -a names=()
  if [[ -f $manifest ]]; then while IFS= read -r name; do [[ -n $name ]] && previous[$name]=1; done < "$manifest"; fi

  while read -r coord sha size; do
    name="$(jar_name "$coord")"
    want[$name]=1; coord_of[$name]=$coord; sha_of[$name]=$sha; size_of[$name]=$size; names+=("$name")
    # Another version of the same artifact that we did not put there: two versions on one classpath.
    local group artifact other
    IFS=: read -r group artifact _ <<< "$coord"
    for other in "$dest/$artifact"-[0-9]*.jar; do
      [[ -e $other ]] || continue
      [[ ${other##*/} == "$name" || -n ${previous[${other##*/}]:-} ]] && continue
      jar_is "$other" "$group" "$artifact" || continue  # same file name, another project (artifact ids repeat)
      die "$coord: $dest already has ${other##*/} (not installed by this script); two versions of $group:$artifact would be on Spark's classpath"
    done
  done <<< "$lock_lines"

  # One sha256sum over DEST_DIR, then one over the cached copies of the jars DEST_DIR lacks: a warm run reads each
  # jar once and starts a handful of processes.
  hashes() { # dir name... -> "name sha" lines for those present in dir
    local dir=$1 n; shift; local -a files=()
    for n in "$@"; do [[ -f $dir/$n ]] && files+=("$dir/$n"); done
    ((${#files[@]})) && sha256sum "${files[@]}" | while read -r h f; do echo "${f##*/} $h"; done
    return 0
  }
  while read -r name sha; do [[ -n $name ]] && dest_sha[$name]=$sha; done < <(hashes "$dest" "${names[@]}")
  local -a missing=()
  for name in "${names[@]}"; do [[ ${dest_sha[$name]:-} == "${sha_of[$name]}" ]] || missing+=("$name"); done
  if ((${#missing[@]})); then
    while read -r name sha; do [[ -n $name ]] && cache_sha[$name]=$sha; done < <(hashes "$JARS_CACHE" "${missing[@]}")
  fi

  # Every jar verified in the cache before DEST_DIR changes: a bad download leaves DEST_DIR as it was.
  for name in "${missing[@]}"; do
    [[ ${cache_sha[$name]:-} == "${sha_of[$name]}" ]] && continue
    [[ -n ${cache_sha[$name]:-} ]] && log "cached $name does not match jars.lock; downloading it again"
    download "${coord_of[$name]}" "${sha_of[$name]}" "${size_of[$name]}"
    fetched=$((fetched + 1))
  done
  for name in "${missing[@]}"; do
    cp -f "$JARS_CACHE/$name" "$dest/.$name.tmp" && chmod 0644 "$dest/.$name.tmp" && mv -f "$dest/.$name.tmp" "$dest/$name"
    installed=$((installed + 1))
  done
  kept=$((${#names[@]} - installed))

  for name in "${!previous[@]}"; do
    if [[ -z ${want[$name]:-} && -f $dest/$name ]]; then log "removing $name (no longer in jars.lock)"; rm -f "$dest/$name"; fi
  done
  printf '%s\n' "${names[@]}" | LC_ALL=C sort > "$manifest.tmp" && mv -f "$manifest.tmp" "$manifest"
  log "$dest: ${#names[@]} jars of jars.lock: $installed installed, $kept already there ($fetched downloaded)"
}

main() {
  [[ $# == 1 ]] || die "usage: $0 DEST_DIR  (pyspark's jars/ directory, e.g. .venv/lib/python3.11/site-packages/pyspark/jars)"
  install_jars "$1"
}

# Sourced by hack/lock-jars.sh for the helpers above; run, it installs.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
