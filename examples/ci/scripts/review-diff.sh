#!/usr/bin/env bash
# review-diff.sh OUT BASE PLAN...
#
# For each plan file, what the change since the git revision BASE does, as the body of a
# review comment in OUT/<key>.md (<key>: the path with `/` as `__`), with OUT/<key>.state:
#
#   unchanged  `plan diff --exit-code` exited 0: the comment says "no changes"
#   changed    exited 10: the comment is the diff, with the new content hash
#              (OUT/<key>.hash) that the apply-on-merge job will `--expect`
#   invalid    exited 1: the comment is the diagnostics, and the check must fail
#
# plus the full JSON diff (OUT/<key>.json) when the plan is valid. Any other exit (2, a usage
# error such as an unknown BASE) stops the script with that code: it is not a plan problem.
# Every comment starts with `<!-- plan:file PLAN -->`, which post-comments.sh finds it by.
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=forge.sh
. "$here/forge.sh"

out=${1:?usage: review-diff.sh OUT BASE PLAN...}
base=${2:?usage: review-diff.sh OUT BASE PLAN...}
shift 2
mkdir -p "$out"

for plan in "$@"; do
  key=$(plan_key "$plan")
  { plan_marker "$plan"; echo; } >"$out/$key.md"
  plan diff "$plan" --base "$base" --format markdown --exit-code >>"$out/$key.md" 2>"$out/$key.err"
  code=$?
  case $code in
    0 | 10)
      if [ $code = 0 ]; then state=unchanged; else state=changed; fi
      plan diff "$plan" --base "$base" --format json >"$out/$key.json" || exit $?
      jq -r '.new_hash' "$out/$key.json" >"$out/$key.hash"
      ;;
    1)
      state=invalid
      {
        plan_marker "$plan"
        echo
        echo "### \`plan diff\`: \`$plan\` is invalid"
        echo
        echo "Nothing can be applied until it is fixed. \`plan check $plan\` says:"
        echo
        echo '```'
        cat "$out/$key.err"
        echo '```'
      } >"$out/$key.md"
      ;;
    *)
      echo "plan diff $plan --base $base exited $code:" >&2
      cat "$out/$key.err" >&2
      exit "$code"
      ;;
  esac
  echo "$state" >"$out/$key.state"
  echo "$plan: $state"
done
