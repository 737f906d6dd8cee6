#!/usr/bin/env bash
# The real `robustness` sweep on a lent GPU machine (the `device` tool), as one prepared call:
#   run(command="bash benchmarks/gpu_sweep.sh", carry=[".whl", ".devdata"])
# .whl holds wheels of the Python packages that machine's image lacks (its python3 is 3.12 with
# torch, lightning, numpy, matplotlib, scikit-learn already there): the entries of
# `.venv/bin/pip freeze` it lacks (hydra-core, hydra-joblib-launcher, omegaconf, mlflow with its
# skinny and tracing parts and their needs, optuna, plotly, umap-learn, pynndescent, ...), fetched
# here with `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
# manylinux_2_28_x86_64 ... -d .whl NAME==VERSION` (antlr4-python3-runtime 4.9.3 has no wheel:
# `pip wheel` builds it). .devdata/tctodd.tar.gz is the real archive, which that machine cannot
# reach in ../shared. Results (logs, the stores, one job's artifacts) come back under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu-sweep-out}
mkdir -p "$OUT"
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
export LSTMPATHS_AUSLAN=$PWD/.devdata/tctodd.tar.gz
nvidia-smi -L; echo "cores: $(nproc)"
python3 -c "import torch, lightning, mlflow, hydra, optuna, numpy
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'lightning', lightning.__version__,
      'mlflow', mlflow.__version__, 'numpy', numpy.__version__)" || exit 1

lstmpaths_run() { python3 -c "import sys; from lstmpaths.run import main; sys.argv[0] = 'lstmpaths-run'; main()" "$@"; }

nvidia-smi dmon -s u -d 1 > "$OUT/dmon.txt" 2>&1 &
monitor=$!
# SWEEP_JOBS: the jobs-at-once settings to measure, one sweep each (default: the machine's `jobs`)
for jobs in ${SWEEP_JOBS:-$(python3 -c "from lstmpaths.processes import default_jobs; print(default_jobs())")}; do
    # a further setting only while the lease has time for it (SWEEP_BUDGET_S after the first)
    if [ -n "${first_wall:-}" ] && ! python3 -c "import sys; sys.exit($first_wall > ${SWEEP_BUDGET_S:-200})"; then
        echo "sweep jobs=$jobs skipped: the first took ${first_wall} s"; continue
    fi
    export MLFLOW_TRACKING_URI=sqlite:///$PWD/mlruns-gpu-$jobs/mlflow.db
    mkdir -p mlruns-gpu-$jobs
    started=$(date +%s.%N)
    # shellcheck disable=SC2086
    lstmpaths_run -m ${SWEEP_ARGS:-+sweeps=robustness data=auslan} jobs="$jobs" \
        hydra.sweep.dir=multirun/gpu-$jobs > "$OUT/sweep-$jobs.log" 2>&1
    rc=$?
    wall=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
    first_wall=${first_wall:-$wall}
    echo "sweep jobs=$jobs rc=$rc wall_s=$wall"
    tail -n 5 "$OUT/sweep-$jobs.log"
    python3 benchmarks/sweep_split.py "$MLFLOW_TRACKING_URI" gpu-$jobs | tee "$OUT/split-$jobs.txt"
    cp "mlruns-gpu-$jobs/mlflow.db" "$OUT/mlflow-$jobs.db" 2>/dev/null
done
kill $monitor 2>/dev/null
# one paths job's artifacts, to look at its figures here
job=$(dirname "$(dirname "$(find mlruns-gpu-* -name paths.png | head -n 1)")")
[ -n "$job" ] && tar czf "$OUT/job.tgz" -C "$job" . && du -sh "$job"
