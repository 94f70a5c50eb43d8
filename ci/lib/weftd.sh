# Sourced by the scripts that run weftd (ci/demo, bench/, tests/target/*.sh):
# start it in the background and wait until it is ready to serve.
#
# weftd_start LOG TRIES CMD...  runs CMD (weftd, or a wrapper around it) with
#   stderr to LOG, then polls LOG every 0.1 s, TRIES times, for weftd's
#   "ready". Sets weftd_pid, and weftd_port to the first port it listens on.
#   Returns 1, with LOG's tail on stderr, if CMD dies or never gets ready.

weftd_start() {
	local log=$1 tries=$2
	shift 2
	"$@" 2>"$log" &
	weftd_pid=$!
	weftd_port=
	for _ in $(seq "$tries"); do
		grep -q 'ready' "$log" && break
		if ! kill -0 "$weftd_pid" 2>/dev/null; then
			echo "weftd died:" >&2
			tail -20 "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	if ! grep -q 'ready' "$log"; then
		echo "weftd never got ready:" >&2
		tail -20 "$log" >&2
		return 1
	fi
	weftd_port=$(sed -n 's/.*listening on .* port \([0-9]*\)$/\1/p' "$log" | head -1)
}
