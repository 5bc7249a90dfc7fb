# nixproc init-functions: sourced by every generated sysvinit script.
#
# Replaces the LFS init-functions. Starting, stopping and inspecting
# processes is done by the static nixproc-builder helper (@helper@ is
# replaced with its store path by the Nix layer); this file only adapts the
# LSB function names and prints the status column.
#
#   log_info_msg MESSAGE...        print MESSAGE, no newline
#   evaluate_retval                print [  OK  ] or [ FAIL ] for $?, return it
#   log_success_msg MESSAGE...     print MESSAGE and [  OK  ]
#   log_failure_msg MESSAGE...     print MESSAGE and [ FAIL ]
#   start_daemon [-f] [-n NICE] [-p PIDFILE] [-u USER] PROGRAM [ARGS...]
#   killproc [-p PIDFILE] PROGRAM [SIGNAL]
#   statusproc [-p PIDFILE] PROGRAM
#
# POSIX sh: no local variables, no bashisms (checked with sh -n and dash -n).

log_info_msg() {
    printf '%s' "$*"
}

log_success_msg() {
    printf '%s [  OK  ]\n' "$*"
    return 0
}

log_failure_msg() {
    printf '%s [ FAIL ]\n' "$*"
    return 0
}

evaluate_retval() {
    # The function's own positional parameters hold the status: no global
    # variable is set.
    set -- "$?"
    if [ "$1" -eq 0 ]; then
        printf ' [  OK  ]\n'
    else
        printf ' [ FAIL ]\n'
    fi
    return "$1"
}

start_daemon() {
    "@helper@" start-daemon "$@"
}

killproc() {
    "@helper@" killproc "$@"
}

statusproc() {
    "@helper@" statusproc "$@"
}
