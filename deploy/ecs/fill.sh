#!/usr/bin/env bash
# fill.sh FILE: prints FILE with ${AWS_ACCOUNT_ID}, ${AWS_REGION}, ${ECS_CLUSTER} and
# ${API_TARGET_GROUP_ARN} filled in (the account from the current AWS credentials), and checks
# that the result is JSON. Used by .github/workflows/deploy.yml.
set -euo pipefail
: "${AWS_REGION:?}" "${ECS_CLUSTER:?}"
AWS_ACCOUNT_ID=${AWS_ACCOUNT_ID:-$(aws sts get-caller-identity --query Account --output text)}
API_TARGET_GROUP_ARN=${API_TARGET_GROUP_ARN:-}
export AWS_ACCOUNT_ID AWS_REGION ECS_CLUSTER API_TARGET_GROUP_ARN
# shellcheck disable=SC2016 # the variables are envsubst's to expand, not the shell's
envsubst '${AWS_ACCOUNT_ID} ${AWS_REGION} ${ECS_CLUSTER} ${API_TARGET_GROUP_ARN}' < "$1" | jq .
