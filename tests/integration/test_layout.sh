#!/usr/bin/env bash
# The layout holds: which folder of daemon/ may include which (ARCHITECTURE.md), the
# CLI carries no relay, worker, second-factor, PAM helper, supervisor, packet, packet
# relay or network device code, and no
# source file grows past what one module should be.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
repo=$(cd "$here/../.." && pwd)
build=$(dirname "$KTLSTUN")

# folder: the folders it may include besides itself. kmod-helpers/ headers are named
# without a folder and are for ktls, relay, check, supervisor and cli.
declare -A may_include=(
    [core]=""
    [proto]="core"
    [config]="core proto"
    [ktls]="core kmod"
    [tls]="core config ktls"
    [relay]="core ktls kmod"
    [auth]="core config proto tls ktls"
    [packet]="core"
    [iprelay]="core proto packet ktls"
    [netdev]="core"
    [addrplan]="core config"
    [worker]="core config proto tls ktls relay auth packet iprelay"
    [store]="core config proto"
    [helper]="core config proto store"
    [check]="core config proto tls ktls kmod addrplan"
    [supervisor]="core config proto tls ktls relay auth worker helper check kmod packet iprelay netdev addrplan"
    [cli]="core config proto tls ktls check kmod store"
)
# Single headers a folder may include beyond its folders, each for a reason:
#   worker: the generation it serves, built by the supervisor before the fork;
#   cli: the lock state file, edited by `ktlstun unlock` while the daemon is stopped.
declare -A may_include_file=(
    [worker]="supervisor/generation.h"
    [cli]="helper/lock_policy.h helper/lock_state.h"
)

note "include rules"
bad=""
for dir in "$repo"/daemon/*/; do
    folder=$(basename "$dir")
    [ -n "${may_include[$folder]+set}" ] || { bad+="daemon/$folder/ is not in the layout"$'\n'; continue; }
    allowed=" $folder ${may_include[$folder]} "
    files=" ${may_include_file[$folder]:-} "
    # A file, not a pipe: read takes a pipe one byte at a time.
    grep -Hn '^#include "' "$dir"*.[ch] >"$TEST_DIR/includes" 2>/dev/null || true
    while IFS=: read -r file line text; do
        header=
        [[ $text =~ ^#include\ \"([^\"]*)\" ]] && header=${BASH_REMATCH[1]}
        case $header in
            */*) target=${header%%/*} ;;
            kmod_load.h|ktls_probe.h|ktls_uapi.h) target=kmod ;;
            *) bad+="$file:$line: $header is named without its folder"$'\n'; continue ;;
        esac
        [[ $allowed == *" $target "* ]] && continue
        [[ $files == *" $header "* ]] && continue
        bad+="${file#"$repo"/}:$line: $folder/ may not include $header"$'\n'
    done <"$TEST_DIR/includes"
done
[ -z "$bad" ] || fail "includes that break the layout:"$'\n'"$bad"

note "the CLI links none of the daemon-only code"
cli_symbols=$(nm --defined-only "$KTLSTUN" | awk '$2 ~ /^[TtDdBbRr]$/ { print $3 }' | sort -u)
objects=()
for folder in relay worker auth helper supervisor packet iprelay netdev; do
    for object in "$build"/obj/daemon/$folder/*.o; do
        [ -e "$object" ] || fail "no objects under $build/obj/daemon/$folder"
        name=${object##*/}
        case "$folder/${name%.o}" in
            helper/lock_policy|helper/lock_state) continue ;;   # see may_include_file
            supervisor/ktlstund) continue ;;                    # the daemon's main
        esac
        objects+=("$object")
    done
done
# One nm over all the objects ("OBJECT:ADDRESS T NAME" per function one exports): the
# first object, in the order above, that shares a function with the CLI, and those.
shared=$(nm -A --defined-only --extern-only "${objects[@]}" |
    awk 'NR == FNR { cli[$1] = 1; next }
         $2 == "T" && ($3 in cli) { sub(/:[^:]*$/, "", $1); if (first == "") first = $1; if ($1 == first) print $1, $3 }' \
        <(printf '%s\n' "$cli_symbols") - | sort -u)
if [ -n "$shared" ]; then
    object=$(head -n 1 <<<"$shared" | cut -d' ' -f1)
    object=${object#"$build"/obj/daemon/}
    fail "build/ktlstun contains ${object%.o}.c: $(echo $(cut -d' ' -f2 <<<"$shared"))"
fi
pam_calls=$(nm --undefined-only "$KTLSTUN" | awk '{ print $2 }' | grep -E '^pam_' || true)
[ -z "$pam_calls" ] || fail "build/ktlstun calls libpam: $(echo $pam_calls)"
splice_calls=$(nm --undefined-only "$KTLSTUN" | awk '{ print $2 }' | grep -E '^(splice|pam_start)(@|$)' || true)
[ -z "$splice_calls" ] || fail "build/ktlstun calls $(echo $splice_calls)"
# The check has teeth: the daemon does contain what the CLI must not.
daemon_symbols=$(nm "$KTLSTUND")
grep -q ' T relay_splice_' <<<"$daemon_symbols" || fail "no relay_splice_ in ktlstund: the symbol check reads the wrong names"
grep -qE ' U pam_(start|authenticate)' <<<"$daemon_symbols" || fail "no pam_start in ktlstund: the libpam check reads the wrong names"

note "no source file past 700 lines"
long=$(find "$repo/daemon" "$repo/kmod-helpers" -name '*.[ch]' -exec wc -l {} + |
       awk '$2 != "total" && $1 > 700 { print $2 " (" $1 " lines)" }')
[ -z "$long" ] || fail "files past 700 lines: $long"
