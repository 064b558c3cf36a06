#!/usr/bin/env bash
# The month-end close as a scheduled job: check the month, close and
# publish it with both --fail-on gates, say where the invoices are.
#
#   examples/month-end.sh POLICY [--as-of YYYY-MM-DD] [--out URL]
#
# POLICY is the policy file (a path or an s3://, gs://, az:// URL). The
# month is PERIOD (default `previous`: the month before --as-of, or before
# today in UTC). Outputs go to the policy's [output] url (the bucket), or
# --out. Credentials come from the environment, as for every run
# (AWS_*, GOOGLE_*, AZURE_*); they are never printed.
#
# Environment: CHARGEBACK, the binary (default `chargeback` on PATH);
# PERIOD; SUMMARY, where the run's --json summary is written (default
# month-end-summary.json), for the CI job to keep as an artefact.
#
# Exit codes are chargeback's: 0 closed cleanly; 1 bad input or policy and
# 3 storage (nothing published); 4 published, but there are reconciliation
# exceptions or a team over budget — the job fails so finance looks at it.
set -euo pipefail

usage() { sed -n '4p' "$0" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 1 ] || usage
policy=$1
shift
as_of=() out=()
while [ $# -gt 0 ]; do
    case "$1" in
        --as-of) as_of=(--as-of "${2:?--as-of needs a date}"); shift 2 ;;
        --out) out=(--out "${2:?--out needs a URL}"); shift 2 ;;
        *) echo "month-end.sh: unknown option $1" >&2; usage ;;
    esac
done
bin=${CHARGEBACK:-chargeback}
period=${PERIOD:-previous}
summary=${SUMMARY:-month-end-summary.json}

# 1. Check the policy and every input; nothing is written. Bad input stops
#    the job here, with the file, row and column on stderr.
"$bin" validate --config "$policy" --period "$period" "${as_of[@]}" --quiet

# 2. Close and publish. Exit 4 means published, with something to review.
code=0
"$bin" run --config "$policy" --period "$period" "${as_of[@]}" "${out[@]}" \
    --fail-on exceptions --fail-on budget --json >"$summary" || code=$?

# 3. Say what happened and where the invoices are (the summary is one line
#    of JSON; the fields read here are plain strings and numbers).
field() { sed -n "s/.*\"$1\":\\(\"[^\"]*\"\\|[0-9]*\\).*/\\1/p" "$summary" | tr -d '"'; }
case $code in
    0 | 4)
        where=$(field published_to)
        echo "closed $(field period): invoices in ${where%/}/invoices/, summary in $summary"
        echo "  billed $(field billed) $(field currency), charged $(field charged), exceptions $(field exceptions)"
        [ "$code" -eq 0 ] || echo "  to review: $(sed -n 's/.*"gates_tripped":\[\(.*\)\]}$/\1/p' "$summary")"
        ;;
    *) echo "month-end.sh: the run stopped (exit $code); nothing was published" >&2 ;;
esac
exit "$code"
