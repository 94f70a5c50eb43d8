# Sourced by the scripts that read the benchmarks' "RESULT key=value ..."
# lines (xport_perf, volume_ab) and compare their figures: bench/*, tests/bench/*.

# result_field LINE KEY: the value of KEY in LINE; nothing if LINE lacks it.
result_field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2; exit }'; }

# pair_ratio "A1 A2 ..." "B1 B2 ...": run i of A over run i of B, taken seconds
# apart so that a slow spell of the host spanning both cancels out. Prints
# their geometric mean and its 95% Student-t interval as "R [LO,HI]" (just
# "R" from one pair, "-" from none); pairs with a nan or non-positive side
# are left out.
pair_ratio() {
	paste -d' ' <(echo "$1" | tr ' ' '\n' | grep -v '^$') <(echo "$2" | tr ' ' '\n' | grep -v '^$') |
		awk '$1 != "nan" && $2 != "nan" && $1 > 0 && $2 > 0 { l[++n] = log($1 / $2); s += l[n] }
		END {
			if (!n) { print "-"; exit }
			m = s / n
			if (n < 2) { printf "%.3f\n", exp(m); exit }
			for (i = 1; i <= n; i++) q += (l[i] - m) ^ 2
			split("12.71 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 " \
			      "2.201 2.179 2.160 2.145 2.131 2.120 2.110 2.101 2.093 2.086", t)
			df = n - 1
			tq = df <= 20 ? t[df] : df <= 30 ? 2.086 - (df - 20) * 0.0044 : 2.0
			h = tq * sqrt(q / df) / sqrt(n)
			printf "%.3f [%.3f,%.3f]\n", exp(m), exp(m - h), exp(m + h)
		}'
}
