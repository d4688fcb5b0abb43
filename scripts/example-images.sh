#!/usr/bin/env bash
# Builds the local images of clnrm's examples, with no image registry (nothing is
# pulled): only Debian's apt mirror and PyPI (on the host, by pip) are used.
#
#   clnrm/bookworm:latest     a minimal Debian 12 made here by debootstrap (minbase)
#                             and `docker import`; the base of every other. ~117 MB.
#   clnrm/postgres:15         images/postgres: Debian's PostgreSQL 15, started like the
#                             official postgres image (see images/README.md). ~435 MB.
#
# The examples' apps are not built here: clnrm builds them from their source (`build`
# in their test files) on top of clnrm/bookworm. What their Dockerfiles copy but git
# does not hold is fetched here: the Python wheels of each app's requirements.txt
# (the OpenTelemetry SDK), into its wheels/ (git-ignored):
#   images/orders-app/wheels/          the orders example's app (and migrations)
#   examples/web-develop/app/wheels/   the web-develop example's app
#   examples/grpc-greeter/app/wheels/  the gRPC example's server (grpcio, reflection)
#
# Each image carries a label clnrm.recipe=<sha256 of what made it>: the recipe below for
# bookworm; for postgres its directory's files and the base image's id. An image whose
# label matches is not built again; --force rebuilds both. Wheels are downloaded again
# only when their requirements.txt changed.
# Cost on the 2-core machine (cold, measured while another build ran): bookworm 42 s
# (debootstrap), postgres 54 s (apt inside the build), the wheels ~3 s each; a re-run
# with nothing changed takes ~0.2 s. Needs root (debootstrap), a Docker engine and
# python3 -m pip on the host.
#
#   scripts/example-images.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."

force=false
case "${1:-}" in
    "") ;;
    --force) force=true ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

LABEL=clnrm.recipe
MIRROR=http://deb.debian.org/debian
SUITE=bookworm
# What debootstrap leaves that no image needs: downloaded .debs, package lists (every
# Dockerfile runs apt-get update first), and this host's resolver and name (Docker
# gives each container its own).
TRIM="var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/* etc/resolv.conf etc/hostname"
IMPORT_CHANGES=('CMD ["/bin/bash"]' 'ENV LANG=C.UTF-8')
# Pip fetches wheels for the image's interpreter, not the host's.
PIP_TARGET=(--only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11
    --implementation cp --abi cp311)

log() { echo "example-images: $*"; }

sha() { sha256sum | cut -d' ' -f1; }

# The recipe label an image carries, or nothing.
label_of() {
    docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

image_id() { docker image inspect --format '{{.Id}}' "$1"; }

# Whether $1 must be built for recipe $2 (printing why it is skipped).
needs_build() {
    if ! $force && [[ "$(label_of "$1")" == "$2" ]]; then
        log "$1 is up to date"
        return 1
    fi
    return 0
}

# The sha256 of a directory's files (names and contents) and of the extra words given.
dir_recipe() {
    local dir=$1
    shift
    {
        printf '%s\n' "$@"
        (cd "$dir" && find . -type f ! -path './wheels/*' ! -path '*/__pycache__/*' \
            ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha
}

build_bookworm() {
    local image=clnrm/bookworm:latest recipe dir start
    recipe=$(printf '%s\n' "debootstrap --variant=minbase $SUITE $MIRROR" "trim $TRIM" \
        "${IMPORT_CHANGES[@]}" | sha)
    needs_build "$image" "$recipe" || return 0
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    start=$SECONDS
    dir=$(mktemp -d /tmp/clnrm-bookworm.XXXXXX)
    # shellcheck disable=SC2064 # expand $dir now
    trap "rm -rf '$dir'" EXIT
    log "building $image (debootstrap, log: $dir.log)"
    if ! debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1; then
        tail -n 30 "$dir.log" >&2
        echo "example-images: debootstrap failed; full log: $dir.log" >&2
        exit 1
    fi
    # shellcheck disable=SC2086 # $TRIM is globs
    (cd "$dir" && rm -rf $TRIM)
    local changes=(--change "LABEL $LABEL=$recipe")
    for c in "${IMPORT_CHANGES[@]}"; do changes+=(--change "$c"); done
    tar -C "$dir" --numeric-owner -c . | docker import "${changes[@]}" - "$image" >/dev/null
    rm -rf "$dir" "$dir.log"
    trap - EXIT
    log "built $image in $((SECONDS - start)) s"
}

# docker build of images/$1 as $2 with recipe $3, its output kept out of sight unless
# the build fails.
docker_build() {
    local ctx=images/$1 image=$2 recipe=$3 out start=$SECONDS
    out=$(mktemp /tmp/clnrm-build.XXXXXX)
    log "building $image (log: $out)"
    if ! docker build --label "$LABEL=$recipe" -t "$image" "$ctx" >"$out" 2>&1; then
        tail -n 40 "$out" >&2
        echo "example-images: building $image failed; full log: $out" >&2
        exit 1
    fi
    rm -f "$out"
    log "built $image in $((SECONDS - start)) s"
}

build_postgres() {
    local image=clnrm/postgres:15 recipe
    recipe=$(dir_recipe images/postgres "base $(image_id clnrm/bookworm:latest)")
    needs_build "$image" "$recipe" || return 0
    docker_build postgres "$image" "$recipe"
}

# The wheels of $1/requirements.txt in $1/wheels/, downloaded again only when
# requirements.txt changed (wheels/.requirements holds the sha256 they were for).
fetch_wheels() {
    local ctx=$1 want
    want=$(sha <"$ctx/requirements.txt")
    if [[ -f "$ctx/wheels/.requirements" && "$(cat "$ctx/wheels/.requirements")" == "$want" ]]; then
        log "the wheels of $ctx are up to date"
        return 0
    fi
    local pip=(python3 -m pip)
    if ! "${pip[@]}" --version >/dev/null 2>&1; then
        echo "example-images: python3 -m pip is needed to download the wheels of $ctx" >&2
        exit 1
    fi
    log "downloading the wheels of $ctx/requirements.txt"
    rm -rf "$ctx/wheels"
    mkdir -p "$ctx/wheels"
    env -u PIP_FIND_LINKS "${pip[@]}" download -q --disable-pip-version-check --no-deps \
        "${PIP_TARGET[@]}" -d "$ctx/wheels" -r "$ctx/requirements.txt"
    echo "$want" >"$ctx/wheels/.requirements"
}

docker info >/dev/null 2>&1 || { echo "example-images: no Docker engine answers" >&2; exit 1; }
build_bookworm
build_postgres
fetch_wheels images/orders-app
fetch_wheels examples/web-develop/app
fetch_wheels examples/grpc-greeter/app
