#!/usr/bin/env bash
# Mutation check: breaks promised behaviours on purpose, one at a time, and
# checks that the tests named for each catch it.
#
#   tests/mutate/run.sh [-l LIST] [-n NAME-REGEX] [-d SCRATCH] [-t SECONDS]
#
# LIST (default tests/mutate/mutations.tsv) has one mutation a line,
# tab-separated:  name  file  sed-expression  ctest-regex  [TH_FILTER]
# ('#' starts a comment line). For each, in a scratch copy of the working
# tree (uncommitted changes included) with one incremental build directory:
# apply `sed -E -i -e EXPRESSION FILE`, check that the file changed, build,
# run `ctest -R REGEX` (with TH_FILTER exported when given: a cmocka pattern
# that narrows the program to the cases that matter), and restore the file.
# A failing test run means the mutation was KILLED; a passing one means it
# SURVIVED, or was VACUOUS when no test case ran (a filter that selects
# none, a program or cases that skip). Exits 0 only if every mutation
# applied, built and was killed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
list=$here/mutations.tsv
only=
# One scratch folder per checkout: two runs from different trees must not
# share (and overwrite) one copy.
scratch=${TMPDIR:-/tmp}/mpmlib-mutate-$(id -u)-$(printf '%s' "$root" | cksum | cut -d' ' -f1)
tmo=300
while getopts "l:n:d:t:h" opt; do
    case $opt in
    l) list=$OPTARG ;;
    n) only=$OPTARG ;;
    d) scratch=$OPTARG ;;
    t) tmo=$OPTARG ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
    esac
done
[ -f "$list" ] || { echo "mutate: no list $list" >&2; exit 2; }
jobs=${MUTATE_JOBS:-2}

log() { printf '%s\n' "$*" >&2; }

# The scratch copy: the tracked and untracked (not ignored) files of the
# working tree, as a git repository of its own so that `git checkout` can
# restore a mutated file. Re-synced on every run; the build directory stays,
# so only what changed is rebuilt.
sync_scratch() {
    mkdir -p "$scratch/tree"
    # Files removed from the working tree must not linger in the copy.
    if [ -d "$scratch/tree/.git" ]; then
        (cd "$scratch/tree" && git ls-files -z | xargs -0 rm -f)
    fi
    (cd "$root" && git ls-files -co --exclude-standard -z) |
        (cd "$root" && tar --null -T - -cf -) | tar -xf - -C "$scratch/tree" || return 1
    cd "$scratch/tree" || return 1
    if [ ! -d .git ]; then
        git init -q . || return 1
    fi
    git add -A >/dev/null && git -c user.name=mutate -c user.email=mutate@localhost \
        commit -q --allow-empty -m "mutation base" >/dev/null
}

build() {
    cmake --build "$scratch/build" -j"$jobs" >"$scratch/build.log" 2>&1
}

sync_scratch || { log "mutate: cannot copy the tree to $scratch"; exit 2; }
cd "$scratch/tree"
if [ ! -f "$scratch/build/CMakeCache.txt" ]; then
    cmake -S "$scratch/tree" -B "$scratch/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$scratch/configure.log" 2>&1 || { log "mutate: configure failed: $scratch/configure.log"; exit 2; }
fi
build || { log "mutate: the unmutated tree does not build: $scratch/build.log"; exit 2; }

killed=0 survived=0 broken=0
report=()
while IFS=$'\t' read -r name file expr regex filter; do
    case $name in '' | '#'*) continue ;; esac
    if [ -n "$only" ] && ! [[ $name =~ $only ]]; then
        continue
    fi
    if [ -z "$file" ] || [ -z "$expr" ] || [ -z "$regex" ]; then
        log "mutate: $name: needs name, file, expression and test regex"
        broken=$((broken + 1)); report+=("BAD LINE   $name"); continue
    fi
    git checkout -q -- "$file" 2>/dev/null
    if [ ! -f "$file" ]; then
        broken=$((broken + 1)); report+=("NO FILE    $name ($file)"); continue
    fi
    cp "$file" "$scratch/orig"
    if ! sed -E -i -e "$expr" "$file" || cmp -s "$file" "$scratch/orig"; then
        git checkout -q -- "$file"
        log "mutate: $name: mutation did not apply"
        broken=$((broken + 1)); report+=("NOT APPLIED $name"); continue
    fi
    start=$(date +%s)
    if ! build; then
        git checkout -q -- "$file"
        log "mutate: $name: the mutant does not build (see $scratch/build.log)"
        broken=$((broken + 1)); report+=("NO BUILD   $name"); continue
    fi
    if TH_FILTER=$filter ctest --test-dir "$scratch/build" -R "$regex" --no-tests=error -V \
        --timeout "$tmo" >"$scratch/test-$name.log" 2>&1; then
        # A pass proves something only if a case ran: a filter that
        # selects none, or programs and cases that skip, pass vacuously.
        ran=$(grep -Eo '\[  PASSED  \] [0-9]+ test' "$scratch/test-$name.log" |
            awk '{ n += $4 } END { print n + 0 }')
        if [ "$ran" -eq 0 ]; then
            verdict=VACUOUS; broken=$((broken + 1))
        else
            verdict=SURVIVED; survived=$((survived + 1))
        fi
    else
        verdict=KILLED; killed=$((killed + 1))
    fi
    git checkout -q -- "$file"
    line=$(printf '%-11s%s (%s s)' "$verdict" "$name" $(($(date +%s) - start)))
    log "mutate: $line"
    report+=("$line")
done <"$list"

# Leave the build matching the unmutated tree for the next run.
build >/dev/null 2>&1

printf '\n'
printf '%s\n' "${report[@]}"
printf '\n%d killed, %d survived, %d not applied, not built or vacuous\n' "$killed" "$survived" "$broken"
[ "$survived" -eq 0 ] && [ "$broken" -eq 0 ] && [ "$killed" -gt 0 ]
