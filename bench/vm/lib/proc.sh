# bench/vm/lib/proc.sh — CPU and syscalls of a daemon and its workers, and the lines
# for the host, for the bench guest scripts (sourced, bash only; bench/vm/run.sh,
# rekey.sh and network.sh copy it beside them as lib/proc.sh).

# family PID: PID and every process below it (workers, helpers). Pure bash: forking a
# reader per process is slow under TCG.
family() {
    local all=("$1") next=("$1") found stat p line rest
    while [ ${#next[@]} -gt 0 ]; do
        found=()
        for stat in /proc/[0-9]*/stat; do
            read -r line <"$stat" 2>/dev/null || continue
            rest=${line##*) }
            set -- $rest
            p=${stat#/proc/}
            [[ " ${next[*]} " == *" $2 "* ]] && found+=("${p%/stat}")
        done
        all+=("${found[@]}")
        next=("${found[@]}")
    done
    echo "${all[@]}"
}

# cpu_ticks PID: "UTIME STIME" summed over PID's family (live processes; workers
# persist for the daemon's life, so nothing that did the work has exited).
cpu_ticks() {
    local u=0 s=0 p line rest
    for p in $(family "$1"); do
        read -r line <"/proc/$p/stat" 2>/dev/null || continue
        rest=${line##*) }
        set -- $rest
        u=$((u + ${12}))
        s=$((s + ${13}))
    done
    echo "$u $s"
}

# report LINE...: a result line for the host script, appended to $W/bench.lines and kept
# until the script ends (check output is shown only on failure).
report() {
    printf '%s\n' "$*" >>"$W/bench.lines"
}

# strace_attached ERR N: waits up to 30 s until the strace whose stderr is ERR has
# attached to N processes; 1 when it has not.
strace_attached() {
    local i
    for ((i = 0; i < 300; i++)); do
        [ "$(grep -c 'attached' "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# strace_start STEM ROOT: strace -c -f of ROOT's family into STEM.txt (its stderr in
# STEM.err), in the background: its pid in STRACE_PID (added to PIDS), the traced pids
# in STRACE_PIDS. 1 when it has not attached to all of them within 30 s.
strace_start() {
    local p args=()
    STRACE_PIDS=$(family "$2")
    for p in $STRACE_PIDS; do args+=(-p "$p"); done
    strace -c -f -o "$1.txt" "${args[@]}" 2>"$1.err" &
    STRACE_PID=$!
    PIDS+=("$!")
    strace_attached "$1.err" "$(echo "$STRACE_PIDS" | wc -w)"
}

# strace_stop STEM PID: ends the strace PID (SIGINT: it writes its summary) and waits
# for it; 1 when its summary STEM.txt is empty.
strace_stop() {
    kill -INT "$2"
    wait "$2"
    [ -s "$1.txt" ]
}

# strace -c writes "% time seconds usecs/call calls [errors] syscall"; the total row last.
# strace_syscalls FILE: the total number of calls in the strace -c summary FILE.
strace_syscalls() { awk '$NF == "total" { print $4 }' "$1"; }
# strace_by_call FILE: "CALL:COUNT,..." of the strace -c summary FILE.
strace_by_call() {
    awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { printf "%s%s:%s", sep, $NF, $4; sep = "," }' "$1"
}
