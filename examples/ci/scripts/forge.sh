# shellcheck shell=bash
# The forge's REST API, for the plan CI scripts: list, post and update the comments of a pull
# request (GitHub) or merge request (GitLab), and find the one a commit came from. Sourced,
# not run. Needs curl and jq.
#
#   PLAN_FORGE        github (default) or gitlab
#   github:           GITHUB_API_URL (set by Actions; default https://api.github.com),
#                     GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name)
#   gitlab:           CI_API_V4_URL and CI_PROJECT_ID (set by GitLab CI), GITLAB_TOKEN (a
#                     project access token with the `api` scope: CI_JOB_TOKEN cannot write notes)
#   PLAN_REVIEW_PR    the pull or merge request number (forge_comments, forge_post)

forge=${PLAN_FORGE:-github}

# forge_call METHOD PATH [JSON_FILE]: the answer's body on stdout; fails on HTTP errors.
forge_call() {
  local method=$1 path=$2 data=${3:-}
  local args=(--silent --show-error --fail-with-body --request "$method")
  case $forge in
    github)
      args+=(--header "Authorization: Bearer ${GITHUB_TOKEN:?GITHUB_TOKEN is not set}"
        --header "Accept: application/vnd.github+json")
      path="${GITHUB_API_URL:-https://api.github.com}$path" ;;
    gitlab)
      args+=(--header "PRIVATE-TOKEN: ${GITLAB_TOKEN:?GITLAB_TOKEN is not set}")
      path="${CI_API_V4_URL:?CI_API_V4_URL is not set}$path" ;;
    *) echo "PLAN_FORGE must be github or gitlab, not $forge" >&2; return 2 ;;
  esac
  if [ -n "$data" ]; then
    args+=(--header "Content-Type: application/json" --data-binary "@$data")
  fi
  curl "${args[@]}" "$path"
}

# The comments (notes) of the request, one JSON object {"id", "body"} per line, every page.
forge_comments() {
  local pr=${PLAN_REVIEW_PR:?PLAN_REVIEW_PR is not set} page=1 answer
  while :; do
    case $forge in
      github) answer=$(forge_call GET "/repos/$GITHUB_REPOSITORY/issues/$pr/comments?per_page=100&page=$page") ;;
      gitlab) answer=$(forge_call GET "/projects/$CI_PROJECT_ID/merge_requests/$pr/notes?per_page=100&page=$page") ;;
    esac || return 1
    [ "$(jq 'length' <<<"$answer")" -gt 0 ] || break
    jq -c '.[] | {id, body}' <<<"$answer"
    page=$((page + 1))
  done
}

# forge_post BODY_FILE: a new comment.
forge_post() {
  local json
  json=$(mktemp)
  jq -Rs '{body: .}' <"$1" >"$json"
  case $forge in
    github) forge_call POST "/repos/$GITHUB_REPOSITORY/issues/${PLAN_REVIEW_PR:?}/comments" "$json" ;;
    gitlab) forge_call POST "/projects/$CI_PROJECT_ID/merge_requests/${PLAN_REVIEW_PR:?}/notes" "$json" ;;
  esac >/dev/null
  rm -f "$json"
}

# forge_update ID BODY_FILE: replaces a comment's body.
forge_update() {
  local json
  json=$(mktemp)
  jq -Rs '{body: .}' <"$2" >"$json"
  case $forge in
    github) forge_call PATCH "/repos/$GITHUB_REPOSITORY/issues/comments/$1" "$json" ;;
    gitlab) forge_call PUT "/projects/$CI_PROJECT_ID/merge_requests/${PLAN_REVIEW_PR:?}/notes/$1" "$json" ;;
  esac >/dev/null
  rm -f "$json"
}

# forge_request_of COMMIT: the number of the pull (merge) request the commit was merged from.
forge_request_of() {
  case $forge in
    github) forge_call GET "/repos/$GITHUB_REPOSITORY/commits/$1/pulls" | jq -r '.[0].number // empty' ;;
    gitlab) forge_call GET "/projects/$CI_PROJECT_ID/repository/commits/$1/merge_requests" | jq -r '.[0].iid // empty' ;;
  esac
}

# The marker a plan's comment starts with: the plan file, so an invalid plan (whose name
# cannot be read) still finds its comment.
plan_marker() {
  printf '<!-- plan:file %s -->' "$1"
}

# A file name for the plan's outputs: its path with `/` as `__`.
plan_key() {
  printf '%s' "${1//\//__}"
}
