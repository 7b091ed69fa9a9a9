# bench/vm/lib/proc.sh — CPU of a daemon and its workers, for the bench guest scripts
# (sourced, bash only; bench/vm/run.sh copies it beside them as lib/proc.sh).

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
