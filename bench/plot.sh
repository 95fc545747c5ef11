#!/bin/bash
# plot.sh: draw the runs of one scenario and direction of bench/driver.sh.
#
# Usage: bench/plot.sh SCENARIO_DIR DIRECTION TITLE PATHS
#
# Reads SCENARIO_DIR/results.tsv and, for each run in DIRECTION, the
# receiver's timeline (RUN.csv), the per-path counters (RUN.paths.csv)
# and the fault times (RUN.faults.rel); writes SCENARIO_DIR/DIRECTION.png
# with one panel per run: megabytes delivered to the application over
# time (thick), megabytes each path carried through its shaper towards
# the receiver (thin, layer-2 bytes, so about 4.5% above the payload),
# and a dashed line at each fault.
set -eu

sdir=$1
dir=$2
title=$3
paths=$4

# Print one gnuplot panel for run file prefix $1 with heading $2.
panel()
{
	local base=$1 heading=$2 t a p ncol k

	printf 'unset arrow; unset label\n'
	printf 'set title "%s"\n' "$heading"
	if [ -s "$base.faults.rel" ]; then
		while read -r t a p; do
			printf 'set arrow from %s, graph 0 to %s, graph 1 ' \
				"$t" "$t"
			printf 'nohead dt 2 lw 1.5 lc rgb "red"\n'
			printf 'set label "%s p%s" at %s, graph 0.92 ' \
				"$a" "$p" "$t"
			printf 'offset 0.5, 0 tc rgb "red"\n'
		done <"$base.faults.rel"
	fi

	# shellcheck disable=SC2016
	printf 'plot "%s" using 1:($2/1e6) with lines lw 2.5 ' "$base.csv"
	printf 'lc rgb "black" title "delivered to the application"'
	if [ -s "$base.paths.csv" ]; then
		ncol=$(head -1 "$base.paths.csv" | awk -F, '{ print NF }')
		for ((k = 2; k <= ncol; k++)); do
			printf ', "%s" using 1:%d every ::1 ' \
				"$base.paths.csv" "$k"
			printf 'with lines lw 1.5 '
			printf 'title "path %d (L2)"' $((k - 2))
		done
	fi
	printf '\n'
}

# Print the whole gnuplot program.
program()
{
	local runs=$1 xmax=$2 d label g secs stall checked mib shares base

	printf 'set terminal pngcairo size 1000,%d font "sans,9"\n' \
		$((230 * runs + 50))
	printf 'set output "%s/%s.png"\n' "$sdir" "$dir"
	printf 'set datafile separator ","\n'
	printf 'set key bottom right\n'
	printf 'set grid\n'
	printf 'set xrange [0:%s]\n' "$xmax"
	printf 'set yrange [0:*]\n'
	printf 'set xlabel "seconds since the connection was established"\n'
	printf 'set ylabel "MB"\n'
	printf 'set multiplot layout %d,1 title "%s, %s: paths %s"\n' \
		"$runs" "$title" "$dir" "$paths"
	while IFS=$'\t' read -r d label g secs stall checked mib shares base
	do
		[ "$d" = "$dir" ] || continue
		[ -s "$base.csv" ] || continue
		panel "$base" "$label: $g Mbit/s, $secs s, $mib MiB, \
longest stall $stall ms, checked $checked, path shares $shares"
	done <"$sdir/results.tsv"
	printf 'unset multiplot\n'
}

main()
{
	local runs xmax

	command -v gnuplot >/dev/null || {
		echo "plot: no gnuplot" >&2
		exit 1
	}
	runs=$(awk -F'\t' -v d="$dir" '$1 == d' "$sdir/results.tsv" |
		while IFS=$'\t' read -r _ _ _ _ _ _ _ _ base; do
			[ -s "$base.csv" ] && echo x
		done | wc -l)
	[ "$runs" -gt 0 ] || return 0
	xmax=$(awk -F'\t' -v d="$dir" '$1 == d && $4 + 0 > m { m = $4 }
		END { printf "%.1f\n", m * 1.05 + 0.2 }' "$sdir/results.tsv")
	program "$runs" "$xmax" | gnuplot
	echo "plot: $sdir/$dir.png" >&2
}

main
