#!/bin/bash
# Generate a dataset as a Slurm array: each array task makes one file with
#   partnb generate PARAMS --class NAME --file INDEX
# taking its (NAME, INDEX) from line SLURM_ARRAY_TASK_ID + 1 of a plan that
# `partnb generate PARAMS --plan` wrote before the submission (one "CLASS FILE_INDEX" per line):
#
#   partnb generate params/jetclass.yaml --plan > plan.txt
#   sbatch --array=0-$(( $(wc -l < plan.txt) - 1 ))%200 examples/slurm_generate.sh \
#       params/jetclass.yaml plan.txt
#
# The plan is frozen on purpose: it is read by every task while others complete files, so
# the line numbers must not move. To resubmit the tasks that failed, write a new plan (it
# lists only the files still missing) and submit again with its length. Options after the
# plan go to `partnb generate` (e.g. --out DIR, --jets-per-class N: give the same ones to
# --plan). File i of a class is a pure function of the settings, the seed and i, so the
# files are the ones a single `partnb generate PARAMS` run makes, and such a run (or
# `--plan`) counts them as done. docs/cluster.md has the whole recipe.
#
# PARTNB: the partnb command (default: partnb on PATH; sbatch passes the submitting
# shell's environment, so an activated .venv is enough).
#
# The --array line below is a default for sbatch; the --array given on the command line wins.
#SBATCH --job-name=partnb-generate
#SBATCH --array=0-99
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --mem=2G
#SBATCH --time=04:00:00
#SBATCH --output=partnb-generate-%A_%a.out
set -euo pipefail

usage="usage: sbatch --array=0-(N-1) $0 PARAMS PLAN [partnb generate options]"
params=${1:?$usage}
plan=${2:?$usage}
shift 2
task=${SLURM_ARRAY_TASK_ID:?"not a Slurm array task: submit with sbatch --array ($usage)"}

line=$(sed -n "$((task + 1))p" "$plan")
if [ -z "$line" ]; then
  echo "task $task: $plan has no line $((task + 1)) (it has $(wc -l < "$plan")); " \
       "submit --array=0-$(( $(wc -l < "$plan") - 1 ))" >&2
  exit 2
fi
read -r class file <<< "$line"
# one core per task: Pythia and FastJet run on one thread; keep numpy to one as well
export OMP_NUM_THREADS=1
exec "${PARTNB:-partnb}" generate "$params" --class "$class" --file "$file" --no-progress "$@"
