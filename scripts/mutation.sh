#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules where a silent bug would corrupt results: each module
# is mutated alone and run against its own tests only, so one run fits on 2 CPU cores.  Not in CI
# (minutes to an hour per module); scores and the surviving mutants are recorded in docs/testing.md.
#
#   pip install -e ".[test,mutation]"
#   scripts/mutation.sh                 # every module below
#   scripts/mutation.sh rle metrics     # some of them
#   JOBS=1 NICE=19 scripts/mutation.sh tiling   # one worker, lowest priority (a training job runs)
#
# Each module runs in its own copy of the project, build/mutation/<name>/ (mutmut writes its
# mutants/ tree and cache there, and [tool.mutmut] differs per module); afterwards
#   cd build/mutation/<name> && mutmut results      # the surviving mutants
#   cd build/mutation/<name> && mutmut show <mutant>   # one of them as a diff
set -euo pipefail
cd "$(dirname "$0")/.."

# name | file to mutate (under src/cracksam/) | pytest arguments selecting its tests
MODULES=(
    "metrics|evaluation/metrics.py|tests/test_metrics.py"
    "losses|training/losses.py|tests/test_losses.py tests/test_training.py tests/test_thin_losses.py tests/test_distill.py -k (loss or dice or cwd or skeleton or distillation) and not lowers"
    "lora|models/deltas/lora.py|tests/test_models.py -k lora or delta or forward or gradients"
    "adapter|models/deltas/adapter.py|tests/test_models.py -k adapter or delta or forward or gradients"
    "sam_checkpoint|models/sam_checkpoint.py|tests/test_sam_checkpoint_report.py tests/test_checkpoints.py -k official or rel_pos or base or download or sam_checkpoint_names or summary or adapt or resolve or wrappers or detect or weights_only or read_failure or cache_dir"
    "tiling|inference/tiling.py|tests/test_tiling.py tests/test_predict.py tests/test_native_inference.py -k tiling or tile_origins or tile_reproduces or bilinearly or tile_finds or small_and_odd or batching or sliding or pads_to or scale_changes or thin_line"
    "teacher|training/teacher.py|tests/test_teacher_cache.py tests/test_distill.py -k cache or teacher_logits or identity or fill or progress or entry"
    "measure|measurement/measure.py|tests/test_measure.py tests/test_measure_cli.py tests/test_measure_edges.py"
    "measure_branches|measurement/branches.py|tests/test_measure.py tests/test_measure_cli.py tests/test_measure_edges.py"
    "rle|data/rle.py|tests/test_rle.py"
)

JOBS="${JOBS:-2}"
NICE="${NICE:-0}"
command -v mutmut >/dev/null || { echo "mutmut not found: pip install -e '.[mutation]'" >&2; exit 2; }

selected=("$@")
run_one() {
    local name="$1" file="$2" tests="$3"
    local work="build/mutation/$name"
    echo "== $name: src/cracksam/$file against: $tests"
    rm -rf "$work"
    mkdir -p "$work"
    # A fresh copy: mutmut mutates the whole source tree it is given and keeps state in mutants/.
    tar --exclude=__pycache__ --exclude='*.pyc' -cf - src tests pyproject.toml | tar -xf - -C "$work"
    python - "$work/pyproject.toml" "src/cracksam/$file" "$tests" <<'EOF'
import json, shlex, sys
path, target, tests = sys.argv[1:]
argv = shlex.split(tests)
if "-k" in argv:  # keep the -k expression as one argument
    i = argv.index("-k")
    argv = argv[:i] + ["-k", " ".join(argv[i + 1:])]
# -p no:randomly etc. are not installed; -x stops a mutant's run at its first failing test.
with open(path, "a", encoding="utf-8") as fh:
    fh.write("\n[tool.mutmut]\n")
    fh.write(f"source_paths = [\"src\"]\nonly_mutate = [{json.dumps(target)}]\n")
    fh.write(f"pytest_add_cli_args_test_selection = {json.dumps(argv)}\n")
    fh.write('pytest_add_cli_args = ["-x", "-q", "-p", "no:cacheprovider"]\n')
    # torch's thread pools are not safe to fork after tests ran in the parent.
    fh.write('process_isolation = "forkserver"\n')
EOF
    (
        cd "$work"
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n "$NICE" mutmut run --max-children "$JOBS" >mutmut-run.log 2>&1 \
            || { echo "mutmut run failed, see $work/mutmut-run.log" >&2; tail -20 mutmut-run.log >&2; return 1; }
        mutmut export-cicd-stats >/dev/null
        python - "$name" <<'EOF'
import json, sys
s = json.load(open("mutants/mutmut-cicd-stats.json"))
done = s["killed"] + s["survived"] + s.get("timeout", 0) + s.get("suspicious", 0)
killed = s["killed"] + s.get("timeout", 0)
score = 100.0 * killed / done if done else float("nan")
print(f"{sys.argv[1]}: {killed}/{done} killed ({score:.1f} %), "
      f"{s['survived']} survived, {s.get('no_tests', 0)} without tests, {s.get('skipped', 0)} skipped")
EOF
        mutmut results 2>/dev/null | grep -E "survived|no tests" || true
    )
}

for entry in "${MODULES[@]}"; do
    IFS="|" read -r name file tests <<<"$entry"
    if [ "${#selected[@]}" -gt 0 ] && [[ ! " ${selected[*]} " =~ " $name " ]]; then
        continue
    fi
    run_one "$name" "$file" "$tests"
done
