#!/bin/bash
# The executable of examples/htcondor_generate.sub: one HTCondor job makes one file,
#   partnb generate PARAMS --class NAME --file INDEX [options]
# The submit file passes PARAMS NAME INDEX, one line of `partnb generate PARAMS --plan`
# per job. PARTNB: the partnb command (default: partnb on PATH; the submit file passes the
# submitting shell's environment with getenv).
set -euo pipefail
usage="usage: $0 PARAMS CLASS FILE_INDEX [partnb generate options]"
params=${1:?$usage}
class=${2:?$usage}
file=${3:?$usage}
shift 3
export OMP_NUM_THREADS=1
exec "${PARTNB:-partnb}" generate "$params" --class "$class" --file "$file" --no-progress "$@"
