#!/usr/bin/env bash
# apply-merged.sh PLAN [PLAN_APPLY_ARGS...]
#
# Applies PLAN exactly as its review comment showed it: the content hash in the comment of
# the pull (merge) request the current commit was merged from is passed to
# `plan apply --expect`, so a plan that resolves to anything else (a later commit, an edited
# include, another variable) is refused with nothing sent. Arguments after PLAN go to
# `plan apply` (`--endpoint URL`, `--sandbox DIR`, ...).
#
# It resumes first: on a fresh runner after one died mid-apply, `plan apply --resume` finds
# the unfinished run in JOB and finishes it (every push submitted once). When there is
# nothing to resume (exit 4), it starts a new run. Exit codes are plan apply's.
#
#   PLAN_COMMIT       the merged commit (default: GITHUB_SHA, CI_COMMIT_SHA, or HEAD)
#   PLAN_REVIEW_PR    the request number (default: asked from the forge for PLAN_COMMIT)
set -uo pipefail
here=$(dirname "$0")
# shellcheck source=forge.sh
. "$here/forge.sh"

plan=${1:?usage: apply-merged.sh PLAN [plan apply arguments...]}
shift
commit=${PLAN_COMMIT:-${GITHUB_SHA:-${CI_COMMIT_SHA:-$(git rev-parse HEAD)}}}
if [ -z "${PLAN_REVIEW_PR:-}" ]; then
  PLAN_REVIEW_PR=$(forge_request_of "$commit") || exit 4
  export PLAN_REVIEW_PR
fi
if [ -z "$PLAN_REVIEW_PR" ]; then
  echo "error: commit $commit was not merged from a reviewed request: nothing applied" >&2
  echo "  help: merge plan changes through a pull (merge) request, so the review comment shows the hash to apply" >&2
  exit 1
fi

marker=$(plan_marker "$plan")
hash=$(forge_comments | jq -r --arg m "$marker" \
  'select((.body | split("\n")[0]) == $m) | .body | capture("<!-- plan:hash [^ ]+ (?<h>sha256:[0-9a-f]{64}) -->").h' |
  head -n 1) || exit 4
if [ -z "$hash" ]; then
  echo "error: request #$PLAN_REVIEW_PR has no review comment with a content hash for $plan: nothing applied" >&2
  echo "  help: the review workflow posts one for every changed, valid plan; re-run it on the request" >&2
  exit 1
fi
# On stderr: stdout is plan apply's own (NDJSON with `--format json`).
echo "applying $plan as reviewed in #$PLAN_REVIEW_PR: $hash" >&2

plan apply "$plan" --expect "$hash" --yes --resume "$@"
code=$?
if [ "$code" = 4 ]; then
  # Nothing to resume (or it cannot start at all, which the new run reports again).
  plan apply "$plan" --expect "$hash" --yes "$@"
  code=$?
fi
exit "$code"
