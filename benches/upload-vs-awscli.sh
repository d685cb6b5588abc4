#!/usr/bin/env bash
# maillog's uploader against `aws s3 cp --recursive` (the AWS CLI from PyPI, in a venv under
# target/), 1, 4 and 16 uploads at once, on a local s3s-fs, in one run. The files are the
# window files of the 1M-line benchmark (benches/run-vs-bzip2.sh makes them first if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-tools
venv=target/bench-venv
[ -x "$venv/bin/aws" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q awscli; }
dir=target/bench-data/run-bench/archive
[ -d "$dir" ] || RUNS=1 benches/run-vs-bzip2.sh >&2
"$venv/bin/aws" --version
UPLOAD_DIR="$PWD/$dir" AWS_CLI="$PWD/$venv/bin/aws" cargo bench --locked --bench upload
