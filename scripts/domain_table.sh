#!/usr/bin/env bash
# One seed of a domain's Table 1 block at equal wall-clock: GenRL offline and data-free (every task of the domain
# in one batched `genrl behave` process per start kind), then each baseline trained for GenRL's per-behavior
# training seconds (the group's seconds / K, as scripts/table_budget.py charges it). Runs with an eval.json are
# skipped, so re-running resumes.
#
#   MUJOCO_GL=egl bash scripts/domain_table.sh DOMAIN MFWM SEED
#   e.g. TASKS="stickman_stand stickman_walk stickman_run" bash scripts/domain_table.sh stickman runs/stickman_mfwm 0
#
# Environment: DATA (default runs/data/DOMAIN), OUT (default runs/DOMAIN_table), STEPS (GenRL actor-critic updates,
# default 1000), EPISODES (default 10), TASKS (default DOMAIN_run), BASELINES (algo:reward specs, default
# "iql:image td3bc:image"), THREADS (default 1: two seeds side by side on 2 cores), VLM_PATH (a MiniVLM weights
# folder for the prompts and the baselines' rewards, e.g. src/genrl/vlm/weights/minivlm_v2; default: the default). Writes OUT/{genrl,genrl_data_free}/
# s<seed>/<task>/, OUT/baselines/<algo>_<reward>_<task>_s<seed>/ and OUT.budget.log; then
#   python scripts/table_budget.py OUT --json-out docs/results/DOMAIN_table.json && genrl compare OUT
set -euo pipefail
export MUJOCO_GL=${MUJOCO_GL:-egl}
DOMAIN=${1:?usage: domain_table.sh DOMAIN MFWM SEED}
MFWM=${2:?usage: domain_table.sh DOMAIN MFWM SEED}
SEED=${3:?usage: domain_table.sh DOMAIN MFWM SEED}
DATA=${DATA:-runs/data/$DOMAIN}; OUT=${OUT:-runs/${DOMAIN}_table}; STEPS=${STEPS:-1000}; EPISODES=${EPISODES:-10}
TASKS=${TASKS:-${DOMAIN}_run}; BASELINES=${BASELINES:-"iql:image td3bc:image"}; THREADS=${THREADS:-1}
G=${GENRL:-.venv/bin/genrl}; PY=${PYTHON:-.venv/bin/python}
vlm_flags=(); [ -z "${VLM_PATH:-}" ] || vlm_flags=(--vlm-path "$VLM_PATH")
mkdir -p "$OUT"
task_flags=(); ntasks=0
for task in $TASKS; do task_flags+=(--task "$task"); ntasks=$((ntasks + 1)); done
for kind in offline data_free; do
  if [ "$kind" = offline ]; then dir=$OUT/genrl/s$SEED; starts=(--dataset "$DATA"); else dir=$OUT/genrl_data_free/s$SEED; starts=(--data-free); fi
  done_all=1
  for task in $TASKS; do [ -f "$dir/$task/eval.json" ] || done_all=0; done
  [ "$done_all" = 1 ] || "$G" behave "$MFWM" "${task_flags[@]}" "${starts[@]}" --preset small --steps "$STEPS" \
      --eval-every 0 --eval-episodes "$EPISODES" --seed "$SEED" --out "$dir" --threads "$THREADS" "${vlm_flags[@]}"
done
first=$(set -- $TASKS; echo "$1")
secs=$("$PY" -c "import sys; sys.path.insert(0, 'scripts'); from pathlib import Path; from table_budget import train_seconds
print(train_seconds(Path('$OUT/genrl/s$SEED/$first/metrics.jsonl'))[0] / $ntasks)")
echo "seed $SEED genrl offline training seconds per behavior $secs ($ntasks behaviors in one process)" | tee -a "$OUT.budget.log"
algos=$(for spec in $BASELINES; do echo "${spec%%:*}"; done | sort -u | tr '\n' ' ')
"$PY" benchmarks/bench_baselines.py --threads "$THREADS" --batch-size 64 --steps 30 --algos $algos \
  | tee -a "$OUT.budget.log" > "$OUT.bench_s$SEED.txt"
for task in $TASKS; do
  for spec in $BASELINES; do
    algo=${spec%%:*}; reward=${spec##*:}
    per=$(grep "^| $algo |" "$OUT.bench_s$SEED.txt" | awk -F'|' '{print $7}')
    steps=$("$PY" -c "print(max(100, int(round($secs / $per / 100.0)) * 100))")
    echo "seed $SEED $task $algo-$reward per-step $per s -> $steps steps" | tee -a "$OUT.budget.log"
    run=$OUT/baselines/${algo}_${reward}_${task}_s$SEED
    [ -f "$run/eval.json" ] || "$G" baseline --algo "$algo" --reward "$reward" --task "$task" --dataset "$DATA" \
        --out "$run" --steps "$steps" --batch-size 64 --eval-every 0 --eval-episodes "$EPISODES" --seed "$SEED" \
        --save-every 100 --quiet --threads "$THREADS" "${vlm_flags[@]}"
  done
done
echo "TABLE_SEED_DONE $DOMAIN $SEED"
