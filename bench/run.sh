#!/usr/bin/env bash
# Runs the benchmarks with enough repetitions for benchstat, then writes
# results.txt (raw output), benchstat.txt, results.md (medians and ratios)
# and results.svg (chart). COUNT and BENCHTIME tune the run.
set -euo pipefail
cd "$(dirname "$0")"
count=${COUNT:-10}
benchtime=${BENCHTIME:-1s}
# One pass over every benchmark at a time, count times over, so that a
# burst of load on a shared machine hits all variants alike rather than
# the ten runs of one.
go test -c -o bench.test .
: > results.txt
for i in $(seq "$count"); do
	./bench.test -test.run '^$' -test.bench 'BenchmarkSessions' -test.benchtime "$benchtime" | tee -a results.txt
done
# The curves: one session's cost as its store fills to a million
# sessions, the touches an idle timeout costs, and reads during cleanup.
# Each fills its stores anew, so they run fewer times.
: > results-scale.txt
for i in $(seq "${SCALECOUNT:-3}"); do
	./bench.test -test.run '^$' -test.bench 'BenchmarkScale|BenchmarkIdleTouches|BenchmarkCleanupReads|BenchmarkOwnerSessions' \
		-test.benchtime "${SCALEBENCHTIME:-3000x}" -test.timeout 2h | tee -a results-scale.txt
done
rm -f bench.test
go tool benchstat results.txt > benchstat.txt
go run ./cmd/report -in results.txt -md results.md -svg results.svg -scale results-scale.txt -scalesvg results-scale.svg
echo "wrote results.txt results-scale.txt benchstat.txt results.md results.svg results-scale.svg"
