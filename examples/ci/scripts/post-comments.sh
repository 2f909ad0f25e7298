#!/usr/bin/env bash
# post-comments.sh OUT
#
# Posts the comments review-diff.sh wrote to the pull (merge) request PLAN_REVIEW_PR: one
# comment per plan, found again by its first line (`<!-- plan:file PLAN -->`) and updated in
# place, so a request has one comment per plan however often it is pushed to.
#
#   changed, invalid  posted, or the existing comment updated
#   unchanged         the existing comment updated (a change was reverted: it now says "no
#                     changes", with the plan's unchanged hash); nothing posted when there is none
#
# Exits 1 when a plan is invalid (after posting): the check fails with the diagnostics in
# the comment and in the log. The forge is chosen by PLAN_FORGE (forge.sh).
set -euo pipefail
here=$(dirname "$0")
# shellcheck source=forge.sh
. "$here/forge.sh"

out=${1:?usage: post-comments.sh OUT}
comments=$(forge_comments)
invalid=0
for state_file in "$out"/*.state; do
  [ -e "$state_file" ] || continue
  key=${state_file%.state}
  state=$(cat "$state_file")
  body="$key.md"
  marker=$(head -n 1 "$body")
  id=$(jq -r --arg m "$marker" 'select((.body | split("\n")[0]) == $m) | .id' <<<"$comments" | head -n 1)
  if [ -n "$id" ]; then
    forge_update "$id" "$body"
  elif [ "$state" != unchanged ]; then
    forge_post "$body"
  fi
  if [ "$state" = invalid ]; then
    invalid=1
    echo "::error::$(head -n 3 "$body" | tail -n 1)" >&2
    cat "$key.err" >&2
  fi
done
exit "$invalid"
