# Shared by the benchmark scripts (sourced, not run).

# The best wall-clock time, in seconds, of $1 runs of the rest of the arguments (output dropped).
best() {
  local n=$1; shift
  local best=""
  for _ in $(seq "$n"); do
    local start end t
    start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
