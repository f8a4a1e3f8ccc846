# the cheetah Table 1 block for one seed: GenRL offline + data-free, then baselines at GenRL's wall-clock
# usage: STEPS=1000 bash scripts/cheetah_table.sh MFWM SEED   (MFWM: a run folder or a shipped name, e.g. cheetah;
#   needs runs/data/cheetah; writes runs/ctable/{genrl,genrl_data_free,baselines}/ and runs/ctable.budget.log)
set -euo pipefail
export MUJOCO_GL=egl
MFWM=$1; SEED=$2
DATA=runs/data/cheetah; OUT=runs/ctable; G=.venv/bin/genrl; STEPS=${STEPS:-1000}
TASK=cheetah_run
mkdir -p $OUT
run=$OUT/genrl/${TASK}_s$SEED
[ -f $run/eval.json ] || $G behave $MFWM --task $TASK --dataset $DATA --preset small --steps $STEPS --eval-every 0 --eval-episodes 10 --seed $SEED --out $run --threads 1
run=$OUT/genrl_data_free/${TASK}_s$SEED
[ -f $run/eval.json ] || $G behave $MFWM --task $TASK --data-free --preset small --steps $STEPS --eval-every 0 --eval-episodes 10 --seed $SEED --out $run --threads 1
secs=$(.venv/bin/python -c "import sys; sys.path.insert(0,'scripts'); from table_budget import train_seconds; from pathlib import Path; print(train_seconds(Path('$OUT/genrl/${TASK}_s$SEED/metrics.jsonl'))[0])")
echo "seed $SEED genrl offline train seconds $secs" | tee -a $OUT.budget.log
.venv/bin/python benchmarks/bench_baselines.py --threads 1 --batch-size 64 --steps 30 --algos iql td3 td3bc | tee -a $OUT.budget.log > $OUT.bench_s$SEED.txt
for spec in iql:image td3:video td3bc:image; do
  algo=${spec%%:*}; reward=${spec##*:}
  per=$(grep "^| $algo |" $OUT.bench_s$SEED.txt | awk -F'|' '{print $7}')
  steps=$(.venv/bin/python -c "print(int(round($secs / $per / 100.0)) * 100)")
  echo "seed $SEED $algo-$reward per-step $per s -> $steps steps" | tee -a $OUT.budget.log
  run=$OUT/baselines/${algo}_${reward}_${TASK}_s$SEED
  [ -f $run/eval.json ] || $G baseline --algo $algo --reward $reward --task $TASK --dataset $DATA --out $run \
      --steps $steps --batch-size 64 --eval-every 0 --eval-episodes 10 --seed $SEED --save-every 100 --quiet --threads 1
done
echo STAGE_C_DONE $SEED
