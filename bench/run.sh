#!/usr/bin/env bash
# Runs the benchmarks with enough repetitions for benchstat, then writes
# results.txt (raw output), benchstat.txt, results.md (medians and ratios)
# and results.svg (chart). COUNT and BENCHTIME tune the run.
set -euo pipefail
cd "$(dirname "$0")"
count=${COUNT:-10}
benchtime=${BENCHTIME:-1s}
go test -run '^$' -bench 'BenchmarkSessions' -count "$count" -benchtime "$benchtime" . | tee results.txt
go tool benchstat results.txt > benchstat.txt
go run ./cmd/report -in results.txt -md results.md -svg results.svg
echo "wrote results.txt benchstat.txt results.md results.svg"
