# Sourced by the test scripts that run weftd: a scratch folder, a clean exit,
# and ci/lib/weftd.sh's weftd_start.
#
# script_setup NAME  creates $dir, removed at exit together with any weftd
#   still running as $weftd_pid (weftd_start sets it; clear it once weftd has
#   been stopped), and names the script for fail.
# fail MSG...  prints "NAME: MSG" and exits 1; a script that defines
#   fail_detail has it called first, to show its logs.
. "$(dirname "${BASH_SOURCE[0]}")/../../ci/lib/weftd.sh"

script_setup() {
	script_name=$1
	dir=$(mktemp -d)
	weftd_pid=
	trap script_cleanup EXIT
}

script_cleanup() {
	if [ -n "${weftd_pid:-}" ]; then kill -KILL "$weftd_pid" 2>/dev/null || true; fi
	rm -rf "$dir"
}

fail() {
	echo "$script_name: $*" >&2
	if declare -F fail_detail >/dev/null; then fail_detail; fi
	exit 1
}
