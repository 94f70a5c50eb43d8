# Sourced by the scripts that read the benchmarks' "RESULT key=value ..."
# lines (xport_perf, volume_ab): bench/*, tests/bench/*.

# result_field LINE KEY: the value of KEY in LINE; nothing if LINE lacks it.
result_field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }
