# The benchmark plots, from the CSV files clusterlock_bench writes.
#   gnuplot -e "dir='docs/benchmarks'" benchmarks/plots.gp
# A plot whose CSV file is missing (that measurement was not run) is skipped.

if (!exists("dir")) dir = "docs/benchmarks"
exists_file(f) = system("test -s '" . f . "' && echo 1 || echo 0") + 0
pick(col, value, x) = (strcol(col) eq value) ? x : 1/0
# Every plot starts from this (reset clears the settings of the one before).
common = 'reset; set datafile separator ","; set terminal pngcairo size 900,560 font "sans,11"; set grid; set key top left'

# 1. Command hand-off: CDF, clusterlock run vs etcdctl lock, one panel per regime (the waiter queued 20 ms or
# 250 ms before the release); a full run adds the mixed pairs (one tool's holder, the other's waiter) at 250 ms.
f = dir . "/command_handoff_cdf.csv"
if (exists_file(f)) {
  @common
  set terminal pngcairo size 1100,500 font "sans,11"
  set output dir . "/command_handoff.png"
  set multiplot layout 1,2 title "1. Command hand-off: holder's command ends -> waiter's command starts"
  set xlabel "hand-off (ms, log scale)"
  set ylabel "fraction of trials"
  set logscale x
  set xrange [0.5:200]
  set yrange [0:1.05]
  set key bottom right
  do for [q in "20 250"] {
    set title "waiter queued " . q . " ms before the release"
    plot f every ::1 using 2:(pick(1, "clusterlock " . q, $3)) with steps lw 2 title "clusterlock run", \
         f every ::1 using 2:(pick(1, "etcdctl " . q, $3)) with steps lw 2 title "etcdctl lock", \
         f every ::1 using 2:(pick(1, "clusterlock -> etcdctl " . q, $3)) with steps lw 1 dt 2 title (q eq "250" ? "our holder -> etcdctl's waiter" : ""), \
         f every ::1 using 2:(pick(1, "etcdctl -> clusterlock " . q, $3)) with steps lw 1 dt 2 title (q eq "250" ? "etcdctl's holder -> our waiter" : "")
  }
  unset multiplot
}

# 2. Library hand-off: CDF, ours in one process and across processes (watch line, and watch predecessor), etcd's Go
# recipe in one process; one panel per regime.
f = dir . "/library_handoff_cdf.csv"
if (exists_file(f)) {
  @common
  set terminal pngcairo size 1100,500 font "sans,11"
  set output dir . "/library_handoff.png"
  set multiplot layout 1,2 title "2. Library hand-off: async\\_shutdown (Go: Unlock) -> next ACQUIRED (Go: Lock returns)"
  set xlabel "hand-off (ms, log scale)"
  set ylabel "fraction of hand-offs"
  set logscale x
  set xrange [0.1:200]
  set yrange [0:1.05]
  set key bottom right font ",9"
  set arrow 1 from 2, graph 0 to 2, graph 1 nohead dt 2 lc rgb "gray40"
  set arrow 2 from 10, graph 0 to 10, graph 1 nohead dt 2 lc rgb "gray40"
  set label 1 "median target 2 ms" at 2, graph 0.97 offset 0.5,0 tc rgb "gray40"
  set label 2 "p99 target 10 ms" at 10, graph 0.9 offset 0.5,0 tc rgb "gray40"
  do for [q in "20 250"] {
    set title "waiter queued " . q . " ms before the release"
    plot f every ::1 using 2:(pick(1, "in-process " . q, $3)) with steps lw 2 lc 1 title "ours (line), in one process", \
         f every ::1 using 2:(pick(1, "cross-process " . q, $3)) with steps lw 2 lc 2 title "ours (line), across processes", \
         f every ::1 using 2:(pick(1, "in-process-predecessor " . q, $3)) with steps lw 2 lc 4 title "ours (predecessor), in one process", \
         f every ::1 using 2:(pick(1, "cross-process-predecessor " . q, $3)) with steps lw 2 lc 7 title "ours (predecessor), across processes", \
         f every ::1 using 2:(pick(1, "go-recipe " . q, $3)) with steps lw 2 lc 3 dt 2 title "Go recipe, in one process"
  }
  unset multiplot
}

# 3. Crash fail-over against the TTL.
f = dir . "/crash_failover.csv"
if (exists_file(f)) {
  @common
  set output dir . "/crash_failover.png"
  set title "3. Crash fail-over: holder SIGKILLed -> next ACQUIRED"
  set xlabel "lease TTL (s)"
  set ylabel "fail-over (s)"
  set xrange [0:11]
  set yrange [0:12]
  set key top left
  plot x with lines dt 2 lc rgb "gray40" title "TTL", \
       x + 1 with lines dt 3 lc rgb "red" title "target: TTL + 1 s", \
       2 * x / 3 with lines dt 4 lc rgb "gray70" title "2/3 TTL (killed just before a keepalive)", \
       f every ::1 using 1:3 with points pt 7 ps 1.2 title "trials"
}

# 4. Acquire+release cycles per second, each block of each round.
f = dir . "/acquire_cycles.csv"
if (exists_file(f)) {
  @common
  set output dir . "/acquire_cycles.png"
  set title "4. Uncontended acquire+release cycles per second (blocks interleaved)"
  set xlabel "round"
  set ylabel "cycles per second"
  set yrange [0:*]
  set xtics 1
  set key bottom right
  plot f every ::1 using 1:(pick(2, "lock acquire+release", $5)) with points pt 7 ps 1.3 title "lock acquire+release", \
       f every ::1 using 1:(pick(2, "put+delete floor", $5)) with points pt 5 ps 1.3 title "put+delete floor", \
       f every ::1 using 1:(pick(2, "lock txns without watch", $5)) with points pt 4 ps 1.3 title "the lock's two txns alone", \
       f every ::1 using 1:(pick(2, "lock txns with watch", $5)) with points pt 6 ps 1.3 title "the lock's two txns, prefix watched"
}

# 6. Scale: many locks on one session.
f = dir . "/scale.csv"
if (exists_file(f)) {
  @common
  set output dir . "/scale.png"
  set terminal pngcairo size 1100,800 font "sans,11"
  set multiplot layout 2,2 title "6. Many locks on one session, one process"
  set logscale x
  set xlabel "locks"
  set xrange [0.7:15000]
  set key top left
  set title "RSS"
  set ylabel "MiB"
  set yrange [0:*]
  plot f every ::1 using 1:4 with linespoints lw 2 pt 7 title "RSS", 64 with lines dt 2 lc rgb "red" title "target at 10,000"
  set title "idle CPU"
  set ylabel "% of one core"
  plot f every ::1 using 1:5 with linespoints lw 2 pt 7 title "idle CPU", 2 with lines dt 2 lc rgb "red" title "target at 10,000"
  set title "time to acquire all"
  set ylabel "s"
  plot f every ::1 using 1:2 with linespoints lw 2 pt 7 title "acquire all"
  set title "idle traffic"
  set ylabel "KiB per minute from etcd"
  plot f every ::1 using 1:7 with linespoints lw 2 pt 7 title "KiB/min from etcd"
  unset multiplot
}

# 7. Many waiters: hand-off p50 and etcd's CPU per hand-off against the queue's length: ours watching the whole line,
# ours watching the predecessor only, and etcd's Go recipe.
f = dir . "/waiters.csv"
if (exists_file(f)) {
  @common
  set terminal pngcairo size 1100,500 font "sans,11"
  set output dir . "/waiters.png"
  # The rows of one implementation and regime (one process, or several), as their own series: lines join them.
  rows(impl, many) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\" && ($3 > 1) == %d' '%s'", impl, many, f)
  set multiplot layout 1,2 title "7. Many waiters on one lock, hand-offs 50 ms apart"
  set logscale xy
  set xlabel "waiters"
  set xrange [7:1500]
  set key top left
  do for [col in "5 7"] {
    set ylabel (col eq "5" ? "hand-off p50 (ms)" : "etcd CPU per hand-off (ms)")
    c = col + 0
    plot rows("ours (line)", 0) using 2:c with linespoints lw 2 lc 1 pt 7 title "ours (line), one process", \
         rows("ours (line)", 1) using 2:c with linespoints lw 2 lc 1 pt 5 dt 3 title "ours (line), a process each (up to 100)", \
         rows("ours (predecessor)", 0) using 2:c with linespoints lw 2 lc 4 pt 7 title "ours (predecessor), one process", \
         rows("ours (predecessor)", 1) using 2:c with linespoints lw 2 lc 4 pt 5 dt 3 title "ours (predecessor), a process each", \
         rows("Go recipe", 0) using 2:c with linespoints lw 2 lc 3 pt 6 dt 2 title "Go recipe, one process", \
         rows("Go recipe", 1) using 2:c with linespoints lw 2 lc 3 pt 4 dt 4 title "Go recipe, a process each"
  }
  unset multiplot
}
