#!/usr/bin/env bash
# The walker rows of the paper's Table 1 at a small CPU budget: six VLM-reward baselines (IQL / TD3+BC / TD3 x
# image / video reward) and GenRL (offline starts) on walker stand / walk / run, SEEDS seeds each, all on the same
# dataset and the same default VLM, then `genrl compare`. Every run is skipped when its eval.json exists, so
# re-running the script resumes.
#
#   MUJOCO_GL=egl bash scripts/walker_table.sh MFWM_RUN DATASET OUT
#   e.g. MUJOCO_GL=egl bash scripts/walker_table.sh runs/demo/mfwm runs/demo/data runs/table
#
# Budget (environment variables): BASELINE_STEPS (default 300 gradient steps, batch BASELINE_BATCH=64),
# BEHAVE_STEPS (default 500 actor-critic updates), SEEDS (default "0 1"), EPISODES (default 10 per evaluation),
# TASKS (default "walker_stand walker_walk walker_run"). The paper trains baselines 500k steps and GenRL 50k updates on a
# GPU: at this budget the table checks the pipeline, not the paper's numbers.
#
# What runs: BASELINES (default "iql td3bc td3", each with the REWARDS, default "image video"; "" for none) and GENRL_STARTS
# (default "offline"; "offline data_free" adds the data-free column; "" for none). The behavior table of the walker
# tasks:
#   BASELINES= GENRL_STARTS="offline data_free" TASKS="walker_lying_down walker_flipping ..." bash scripts/walker_table.sh ...
# GENRL_GROUP=1 trains the GenRL behaviors of one seed and start kind in one process (`genrl behave` with every task
# of TASKS: batched, OUT/genrl/s<seed>/<task>/), THREADS sets --threads of every run (default: torch's).
set -euo pipefail
MFWM=${1:?usage: walker_table.sh MFWM_RUN DATASET OUT}
DATA=${2:?usage: walker_table.sh MFWM_RUN DATASET OUT}
OUT=${3:?usage: walker_table.sh MFWM_RUN DATASET OUT}
GENRL=${GENRL:-.venv/bin/genrl}
BASELINE_STEPS=${BASELINE_STEPS:-300}
BASELINE_BATCH=${BASELINE_BATCH:-64}
BEHAVE_STEPS=${BEHAVE_STEPS:-500}
SEEDS=${SEEDS:-"0 1"}
EPISODES=${EPISODES:-10}
TASKS=${TASKS:-"walker_stand walker_walk walker_run"}
BASELINES=${BASELINES-"iql td3bc td3"}
REWARDS=${REWARDS:-"image video"}
GENRL_STARTS=${GENRL_STARTS-offline}
GENRL_GROUP=${GENRL_GROUP:-0}
THREADS=${THREADS:-}
threads=()
if [ -n "$THREADS" ]; then threads=(--threads "$THREADS"); fi
# starts_of KIND: the GenRL runs' folder prefix (start_dir) and start flags (flag) of one start kind
starts_of() {
  case "$1" in
    offline) start_dir="$OUT/genrl"; flag=(--dataset "$DATA") ;;
    data_free) start_dir="$OUT/genrl_data_free"; flag=(--data-free) ;;
    *) echo "GENRL_STARTS: unknown start kind '$1' (expected offline or data_free)" >&2; exit 2 ;;
  esac
}
mkdir -p "$OUT"
for seed in $SEEDS; do
  if [ "$GENRL_GROUP" = 1 ]; then
    for starts in $GENRL_STARTS; do
      starts_of "$starts"
      group="$start_dir/s${seed}"
      task_flags=()
      done_all=1
      for task in $TASKS; do
        task_flags+=(--task "$task")
        if [ ! -f "$group/$task/eval.json" ]; then done_all=0; fi
      done
      if [ "$done_all" = 0 ]; then
        "$GENRL" behave "$MFWM" "${task_flags[@]}" "${flag[@]}" --preset small --steps "$BEHAVE_STEPS" \
          --eval-every 0 --eval-episodes "$EPISODES" --seed "$seed" --out "$group" "${threads[@]}"
      fi
    done
  fi
  for task in $TASKS; do
    for starts in $GENRL_STARTS; do
      if [ "$GENRL_GROUP" = 1 ]; then continue; fi
      starts_of "$starts"
      run="$start_dir/${task}_s${seed}"
      if [ ! -f "$run/eval.json" ]; then
        "$GENRL" behave "$MFWM" --task "$task" "${flag[@]}" --preset small --steps "$BEHAVE_STEPS" \
          --eval-every 0 --eval-episodes "$EPISODES" --seed "$seed" --out "$run" "${threads[@]}"
      fi
    done
    for algo in $BASELINES; do
      for reward in $REWARDS; do
        run="$OUT/baselines/${algo}_${reward}_${task}_s${seed}"
        if [ ! -f "$run/eval.json" ]; then
          "$GENRL" baseline --algo "$algo" --reward "$reward" --task "$task" --dataset "$DATA" --out "$run" \
            --steps "$BASELINE_STEPS" --batch-size "$BASELINE_BATCH" --eval-every 0 \
            --eval-episodes "$EPISODES" --seed "$seed" --save-every 100 --quiet "${threads[@]}"
        fi
      done
    done
  done
done
"$GENRL" compare "$OUT" --out "$OUT/table.md"
